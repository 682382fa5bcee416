using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// Builds the frames of one flow toward the guest: the connection's <see cref="ITcpSegmentWriter"/>.
/// Each segment becomes an Ethernet + IP + TCP frame in the stack's transmit buffer, its payload
/// copied from the flow's <see cref="ITcpSendSource"/> straight into the frame (the one copy of
/// those bytes); a payload larger than the guest's MSS is marked as a super-segment for the
/// kernel to cut when the link takes them. Loop thread only.
/// </summary>
internal sealed class GuestSegmentWriter : ITcpSegmentWriter
{
    private readonly NetworkStack _stack;
    private readonly ITcpSendSource _source;

    /// <summary>Frames for <paramref name="key"/>, payload from <paramref name="source"/>.</summary>
    public GuestSegmentWriter(NetworkStack stack, FlowKey key, ITcpSendSource source)
    {
        _stack = stack;
        _source = source;
        Key = key;
    }

    /// <summary>The flow as the guest sees it: frames go from its remote end to its guest end.</summary>
    public FlowKey Key { get; }

    /// <summary>The guest's MSS (from its SYN; 536 when it sent none, RFC 9293 §3.7.1): the size super-segments are cut to.</summary>
    public ushort PeerMss { get; private set; } = 536;

    /// <summary>Takes the MSS option of a guest SYN; other segments and a SYN without one change nothing.</summary>
    public void LearnPeerMss(in TcpSegmentInfo segment)
    {
        if ((segment.Flags & TcpFlags.Syn) != 0 && segment.Options.Mss != 0)
        {
            PeerMss = segment.Options.Mss;
        }
    }

    /// <inheritdoc />
    public void Write(in TcpSegmentInfo segment, long sourceOffset)
    {
        var key = Key;
        int headerLength = TcpPacket.MinHeaderLength + TcpPacket.OptionsLength(segment.Options);
        int l4 = _stack.TransportOffset(key.GuestAddress);
        int payload = 0;
        if (segment.PayloadLength > 0)
        {
            payload = _source.Peek(sourceOffset, _stack.TxBuffer.Slice(l4 + headerLength, segment.PayloadLength));
            if (payload == 0)
            {
                return; // the bytes vanished (host socket reset): nothing sensible to send
            }
        }

        var flags = segment.Flags;
        if (payload < segment.PayloadLength)
        {
            flags &= ~TcpFlags.Fin; // a short read must not claim the FIN that followed the missing bytes
        }

        var tcp = new TcpRepr(key.RemotePort, key.GuestPort, segment.Seq, segment.Ack, flags, segment.Window, segment.Options, payload);
        var builder = _stack.StartPacket(key.RemoteAddress, key.GuestAddress, IpProtocol.Tcp, tcp.BufferLength);
        int gso = payload > PeerMss && _stack.SegmentationOffload ? PeerMss : 0;
        _stack.SendToGuest(key.GuestAddress, builder.WriteTcp(in tcp, gso));
    }
}
