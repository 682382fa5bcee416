using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tcp;

/// <summary>
/// A TCP segment as the state machine sees it: header fields and options, no addresses,
/// no checksum. The payload travels separately (a span on input, a stream offset on output)
/// so that no bytes are copied to describe a segment.
/// </summary>
public struct TcpSegmentInfo
{
    /// <summary>Sequence number.</summary>
    public uint Seq;

    /// <summary>Acknowledgment number; meaningful only when <see cref="TcpFlags.Ack"/> is set.</summary>
    public uint Ack;

    /// <summary>Control bits.</summary>
    public TcpFlags Flags;

    /// <summary>The raw 16-bit window field as on the wire (unscaled).</summary>
    public ushort Window;

    /// <summary>Options carried by the segment.</summary>
    public TcpOptions Options;

    /// <summary>Payload length in bytes.</summary>
    public int PayloadLength;
}
