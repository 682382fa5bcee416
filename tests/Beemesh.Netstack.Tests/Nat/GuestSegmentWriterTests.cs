using System.Buffers.Binary;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Tests.Stack;
using Beemesh.Netstack.Tests.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Nat;

public class GuestSegmentWriterTests
{
    private static readonly FlowKey Key = new(IpAddr.FromV4(TestFrames.GuestIp), 40000, IpAddr.FromV4(TestFrames.GatewayIp), 8080);

    /// <summary>A stack that knows the guest's MAC (from its ARP request), so frames go out at once.</summary>
    private static StackTestContext KnownGuest(out MemoryLink link, bool vnet = false, bool offload = false)
    {
        link = new MemoryLink(vnet, offload);
        var ctx = new StackTestContext(vnet, link: link);
        link.Inject(vnet ? TestFrames.WithVnet(TestFrames.ArpRequest(TestFrames.GatewayIp)) : TestFrames.ArpRequest(TestFrames.GatewayIp));
        ctx.Stack.PumpOnce();
        Assert.Single(link.TakeAll()); // the ARP reply
        return ctx;
    }

    private static (byte[] Frame, byte[] Tcp) One(MemoryLink link, bool vnet)
    {
        var frame = Assert.Single(link.TakeAll());
        if (!vnet)
        {
            EmittedFrameChecker.AssertWellFormed(frame, vnet); // it knows no super-segments
        }
        byte[] eth = vnet ? frame[10..] : frame;
        Assert.Equal(TestFrames.GuestMac, TestFrames.ReadMac(eth));
        int ihl = (eth[14] & 0x0F) * 4;
        Assert.Equal(TestFrames.GatewayIp, BinaryPrimitives.ReadUInt32BigEndian(eth.AsSpan(14 + 12)));
        Assert.Equal(TestFrames.GuestIp, BinaryPrimitives.ReadUInt32BigEndian(eth.AsSpan(14 + 16)));
        return (frame, eth[(14 + ihl)..]);
    }

    [Fact]
    public void Segment_BecomesAFrame_FromRemoteToGuest_WithPayloadFromTheSource()
    {
        using var ctx = KnownGuest(out var link);
        var source = new MemorySendSource();
        byte[] data = TcpTestContext.Bytes(3000, 9);
        source.Append(data);
        var writer = new GuestSegmentWriter(ctx.Stack, Key, source);
        var seg = new TcpSegmentInfo { Seq = 1234, Ack = 5678, Flags = TcpFlags.Ack | TcpFlags.Psh, Window = 512, PayloadLength = 1000 };
        seg.Options.HasTimestamp = true;
        seg.Options.TsVal = 77;
        seg.Options.TsEcr = 66;
        writer.Write(in seg, 500);

        var (_, tcp) = One(link, vnet: false);
        Assert.True(TcpPacket.TryCreate(tcp, out var p));
        Assert.Equal(8080, p.SourcePort);
        Assert.Equal(40000, p.DestinationPort);
        Assert.Equal(1234u, p.SequenceNumber);
        Assert.Equal(5678u, p.AcknowledgmentNumber);
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh, p.Flags);
        Assert.Equal(512, p.Window);
        Assert.True(p.TryReadOptions(out var o));
        Assert.True(o.HasTimestamp);
        Assert.Equal(77u, o.TsVal);
        Assert.Equal(66u, o.TsEcr);
        Assert.Equal(data[500..1500], p.Payload.ToArray());
        Assert.Equal(0, source.TotalDiscarded); // the source keeps its bytes until the guest ACKs
    }

    [Fact]
    public void ShortSource_SendsWhatItHas_WithoutTheFin_AndNothingWhenEmpty()
    {
        using var ctx = KnownGuest(out var link);
        var source = new MemorySendSource();
        source.Append(TcpTestContext.Bytes(300, 2));
        var writer = new GuestSegmentWriter(ctx.Stack, Key, source);
        var seg = new TcpSegmentInfo { Seq = 1, Ack = 1, Flags = TcpFlags.Ack | TcpFlags.Fin, Window = 1, PayloadLength = 1000 };
        writer.Write(in seg, 0);
        var (_, tcp) = One(link, vnet: false);
        Assert.True(TcpPacket.TryCreate(tcp, out var p));
        Assert.Equal(300, p.Payload.Length);
        Assert.Equal(TcpFlags.Ack, p.Flags); // the FIN followed bytes that are not there

        var gone = new TcpSegmentInfo { Seq = 1, Ack = 1, Flags = TcpFlags.Ack, Window = 1, PayloadLength = 100 };
        writer.Write(in gone, 300);
        Assert.Empty(link.TakeAll());
    }

    [Fact]
    public void PeerMss_ComesFromSynsOnly_AndCutsSuperSegments()
    {
        using var ctx = KnownGuest(out var link, vnet: true, offload: true);
        var source = new MemorySendSource();
        source.Append(TcpTestContext.Bytes(20_000, 4));
        var writer = new GuestSegmentWriter(ctx.Stack, Key, source);
        Assert.Equal(536, writer.PeerMss);
        var syn = new TcpSegmentInfo { Flags = TcpFlags.Syn };
        syn.Options.Mss = 1460;
        writer.LearnPeerMss(syn);
        Assert.Equal(1460, writer.PeerMss);
        var ack = new TcpSegmentInfo { Flags = TcpFlags.Ack };
        ack.Options.Mss = 9000;
        writer.LearnPeerMss(ack);
        writer.LearnPeerMss(new TcpSegmentInfo { Flags = TcpFlags.Syn });
        Assert.Equal(1460, writer.PeerMss);

        var big = new TcpSegmentInfo { Seq = 1, Ack = 1, Flags = TcpFlags.Ack, Window = 1, PayloadLength = 10_000 };
        writer.Write(in big, 0);
        var (frame, _) = One(link, vnet: true);
        Assert.True(VirtioNetHeader.TryCreate(frame, out var vh));
        Assert.Equal(1460, vh.GsoSize);
        Assert.Equal(VirtioNetGsoType.TcpV4, vh.GsoType);

        var small = new TcpSegmentInfo { Seq = 1, Ack = 1, Flags = TcpFlags.Ack, Window = 1, PayloadLength = 1000 };
        writer.Write(in small, 0);
        (frame, _) = One(link, vnet: true);
        Assert.True(VirtioNetHeader.TryCreate(frame, out vh));
        Assert.Equal(0, vh.GsoSize);
    }
}
