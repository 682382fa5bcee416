namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Receives the segments a <c>TcpConnection</c> wants sent. The writer builds the frame and
/// copies the payload itself from the connection's <see cref="ITcpSendSource"/> starting at
/// <paramref name="sourceOffset"/> (relative to the source's head), so payload bytes are copied
/// exactly once: from the source straight into the outgoing frame.
/// </summary>
public interface ITcpSegmentWriter
{
    /// <summary>Emits one segment. <c>segment.PayloadLength</c> bytes come from the source at <paramref name="sourceOffset"/>.</summary>
    void Write(in TcpSegmentInfo segment, long sourceOffset);
}
