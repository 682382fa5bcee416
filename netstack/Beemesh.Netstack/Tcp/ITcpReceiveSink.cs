namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Where in-order received bytes go. In the forwarding path this is the host socket: bytes are
/// acknowledged to the guest only once the host socket took them, and the advertised window
/// mirrors the host socket's free send space (DESIGN.md).
/// </summary>
public interface ITcpReceiveSink
{
    /// <summary>Free space in bytes the sink can accept now; becomes the advertised receive window.</summary>
    long FreeSpace { get; }

    /// <summary>Offers in-order data; returns how many leading bytes were taken (0..data.Length).</summary>
    int Write(ReadOnlySpan<byte> data);
}
