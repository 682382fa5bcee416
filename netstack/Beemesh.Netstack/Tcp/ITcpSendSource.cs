namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Where a connection's outgoing bytes live until the peer acknowledges them. The state machine
/// keeps no copy: in the forwarding path this is the host socket's receive queue, read with
/// MSG_PEEK at an offset and discarded only when the guest ACKs (DESIGN.md, pasta's idea).
/// Offsets are relative to the head: the first byte not yet discarded, i.e. SND.UNA.
/// </summary>
public interface ITcpSendSource
{
    /// <summary>Bytes readable from the head right now (already sent but unacknowledged ones included).</summary>
    long Available { get; }

    /// <summary>Copies up to <c>destination.Length</c> bytes starting <paramref name="offset"/> bytes after the head; returns the count copied.</summary>
    int Peek(long offset, Span<byte> destination);

    /// <summary>Drops <paramref name="count"/> acknowledged bytes from the head.</summary>
    void Discard(long count);
}
