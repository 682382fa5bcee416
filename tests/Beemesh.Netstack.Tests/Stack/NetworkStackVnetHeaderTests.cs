using System.Buffers.Binary;
using Beemesh.Netstack.Tests.Dhcp;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// On a link opened with IFF_VNET_HDR every frame carries the 10-byte virtio_net_hdr both ways;
/// TCP and UDP go out with NEEDS_CSUM and only the pseudo-header sum in the checksum field.
/// </summary>
public class NetworkStackVnetHeaderTests
{
    [Fact]
    public void ArpReply_CarriesClearedVnetHeader()
    {
        using var ctx = new StackTestContext(vnet: true);

        var raw = Assert.Single(ctx.Exchange(ArpRequest(GatewayIp)));

        Assert.Equal(10 + 14 + 28, raw.Length);
        Assert.All(raw[..10], b => Assert.Equal(0, b));
        Assert.Equal(0x0806, BinaryPrimitives.ReadUInt16BigEndian(raw.AsSpan(10 + 12)));
        EmittedFrameChecker.AssertWellFormed(raw, vnet: true);
    }

    [Fact]
    public void EchoReply_HasCompleteChecksumAndNoNeedsCsum()
    {
        using var ctx = new StackTestContext(vnet: true);

        var raw = Assert.Single(ctx.Exchange(IcmpEcho4Frame(GuestIp, GatewayIp, 3, 4, "payload"u8)));

        Assert.Equal(0, raw[0]);
        EmittedFrameChecker.AssertWellFormed(raw, vnet: true);
    }

    [Fact]
    public void TcpReset_HasNeedsCsumPointingAtChecksumField()
    {
        using var ctx = new StackTestContext(vnet: true);

        var raw = Assert.Single(ctx.Exchange(Tcp4Frame(GuestIp, UnusedIp, 40000, 80, 9, 0, TcpFlags.Syn)));

        Assert.True(VirtioNetHeader.TryCreate(raw, out var vh));
        Assert.Equal(VirtioNetHeaderFlags.NeedsChecksum, vh.Flags);
        Assert.Equal(VirtioNetGsoType.None, vh.GsoType);
        Assert.Equal(14 + 20, vh.ChecksumStart);
        Assert.Equal(16, vh.ChecksumOffset);
        var l4 = raw.AsSpan(10 + 14 + 20);
        uint pseudo = InternetChecksum.PseudoHeaderV4(new Ipv4Address(UnusedIp), new Ipv4Address(GuestIp), IpProtocol.Tcp, l4.Length);
        Assert.Equal((ushort)~InternetChecksum.Fold(pseudo), BinaryPrimitives.ReadUInt16BigEndian(l4[16..]));

        // What the kernel does with NEEDS_CSUM: sum from csum_start and store the complement; the result must verify.
        BinaryPrimitives.WriteUInt16BigEndian(l4[16..], InternetChecksum.Fold(InternetChecksum.Sum(l4)));
        Assert.True(TcpPacket.TryCreate(l4, out var tcp));
        Assert.True(tcp.VerifyChecksumV4(new Ipv4Address(UnusedIp), new Ipv4Address(GuestIp)));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, tcp.Flags);
        Assert.Equal(10u, tcp.AcknowledgmentNumber);
    }

    [Fact]
    public void DhcpOffer_HasNeedsCsumPointingAtUdpChecksumField()
    {
        using var ctx = new StackTestContext(vnet: true);
        var frame = Udp4Frame(0, 0xFFFF_FFFF, 68, 67, DhcpTestPackets.Build(1, 0x5254_0012_3456));

        var raw = Assert.Single(ctx.Exchange(frame));

        Assert.True(VirtioNetHeader.TryCreate(raw, out var vh));
        Assert.Equal(VirtioNetHeaderFlags.NeedsChecksum, vh.Flags);
        Assert.Equal(14 + 20, vh.ChecksumStart);
        Assert.Equal(6, vh.ChecksumOffset);
        EmittedFrameChecker.AssertWellFormed(raw, vnet: true);
    }

    [Fact]
    public void InboundPartialChecksumWithNeedsCsum_IsTrusted()
    {
        using var ctx = new StackTestContext(vnet: true);
        var frame = Tcp4Frame(GuestIp, UnusedIp, 40000, 80, 41, 0, TcpFlags.Syn);
        var l4 = frame.AsSpan(14 + 20);
        uint pseudo = InternetChecksum.PseudoHeaderV4(new Ipv4Address(GuestIp), new Ipv4Address(UnusedIp), IpProtocol.Tcp, l4.Length);
        BinaryPrimitives.WriteUInt16BigEndian(l4[16..], (ushort)~InternetChecksum.Fold(pseudo)); // as the guest kernel leaves it
        ctx.InjectRaw(WithVnet(frame, flags: 1, csumStart: 34, csumOffset: 16));
        ctx.Stack.PumpOnce();

        var raw = Assert.Single(ctx.Link.TakeAll());
        EmittedFrameChecker.AssertWellFormed(raw, vnet: true);
        Assert.Equal(0, ctx.Counters.BadChecksums);
    }

    [Fact]
    public void InboundBadChecksumWithoutVnetFlags_IsDropped()
    {
        using var ctx = new StackTestContext(vnet: true);
        var frame = Tcp4Frame(GuestIp, UnusedIp, 40000, 80, 41, 0, TcpFlags.Syn);
        frame[14 + 20 + 16] ^= 0x55;

        Assert.Empty(ctx.Exchange(frame));
        Assert.Equal(1, ctx.Counters.BadChecksums);
    }

    [Fact]
    public void FrameShorterThanVnetHeader_IsMalformed()
    {
        using var ctx = new StackTestContext(vnet: true);
        ctx.InjectRaw(new byte[6]);
        ctx.Stack.PumpOnce();

        Assert.Empty(ctx.Link.TakeAll());
        Assert.Equal(1, ctx.Counters.MalformedFrames);
        ctx.AssertStillAnswersArp();
    }
}
