using System.Buffers.Binary;
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
        int optionsLength = TcpPacket.OptionsLength(segment.Options);
        int headerLength = 20 + optionsLength;
        int l4 = _stack.L2Offset + NetworkStack.EthernetHeaderLength + NetworkStack.IpHeaderLength(key.GuestAddress);
        var buffer = _stack.TxBuffer;
        int payload = 0;
        if (segment.PayloadLength > 0)
        {
            payload = _source.Peek(sourceOffset, buffer.Slice(l4 + headerLength, segment.PayloadLength));
            if (payload == 0)
            {
                return; // the bytes vanished (host socket reset): nothing sensible to send
            }
        }

        int l4Start = _stack.WriteIpHeader(key.RemoteAddress, key.GuestAddress, IpProtocol.Tcp, headerLength + payload);
        var h = buffer.Slice(l4Start, headerLength);
        BinaryPrimitives.WriteUInt16BigEndian(h, key.RemotePort);
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], key.GuestPort);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], segment.Seq);
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], segment.Ack);
        h[12] = (byte)((headerLength / 4) << 4);
        var flags = segment.Flags;
        if (payload < segment.PayloadLength)
        {
            flags &= ~TcpFlags.Fin; // a short read must not claim the FIN that followed the missing bytes
        }

        h[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(h[14..], segment.Window);
        BinaryPrimitives.WriteUInt32BigEndian(h[16..], 0); // checksum, urgent pointer
        if (optionsLength > 0)
        {
            TcpPacket.WriteOptions(segment.Options, h[20..]);
        }

        int gso = payload > PeerMss && _stack.SegmentationOffload ? PeerMss : 0;
        _stack.FinishTransport(l4Start, headerLength + payload, IpProtocol.Tcp, 16, gso);
        _stack.SendToGuest(key.GuestAddress, l4Start + headerLength + payload);
    }
}
