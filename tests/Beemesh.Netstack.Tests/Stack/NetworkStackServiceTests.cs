using System.Buffers.Binary;
using Beemesh.Netstack.Tests.Dhcp;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>What the stack answers itself: ARP, ICMP echo to its addresses, NDP and router advertisements, DHCP.</summary>
public class NetworkStackServiceTests
{
    [Theory]
    [InlineData(GatewayIp)]
    [InlineData(DnsIp)]
    public void ArpRequestForStackAddress_IsAnsweredWithRouterMac(uint target)
    {
        using var ctx = new StackTestContext();
        var reply = Assert.Single(ctx.ExchangeEthernet(ArpRequest(target)));

        Assert.True(EthernetFrame.TryCreate(reply, out var eth));
        Assert.Equal(EtherType.Arp, eth.EtherType);
        Assert.Equal(GuestMac, ReadMac(reply));
        Assert.True(ArpPacket.TryCreate(eth.Payload, out var arpView));
        Assert.True(ArpRepr.TryParse(arpView, out var arp));
        Assert.Equal(ArpOperation.Reply, arp.Operation);
        Assert.Equal(RouterMac, ReadMac(eth.Payload[8..]));
        Assert.Equal(target, arp.SenderIp.Value);
        Assert.Equal(GuestMac, ReadMac(eth.Payload[18..]));
        Assert.Equal(GuestIp, arp.TargetIp.Value);
        Assert.Equal(1, ctx.Counters.FramesSent);
    }

    [Fact]
    public void ArpProbeForGuestOwnAddress_IsNotAnswered()
    {
        using var ctx = new StackTestContext();

        // RFC 5227 §2.1.1 probe: sender IP 0.0.0.0, target = the address the guest wants.
        Assert.Empty(ctx.Exchange(ArpRequest(GuestIp, senderIp: 0)));
        Assert.Equal(0, ctx.Counters.FramesSent);
    }

    [Fact]
    public void ArpRequestForUnusedAddressInSubnet_IsNotAnswered()
    {
        using var ctx = new StackTestContext();
        Assert.Empty(ctx.Exchange(ArpRequest(UnusedIp)));
    }

    [Theory]
    [InlineData(GatewayIp)]
    [InlineData(DnsIp)]
    public void EchoRequestToStackAddress_IsAnsweredWithSamePayload(uint target)
    {
        using var ctx = new StackTestContext();
        byte[] data = new byte[56];
        new Random(5).NextBytes(data);

        var reply = Assert.Single(ctx.ExchangeEthernet(IcmpEcho4Frame(GuestIp, target, id: 0x4242, seq: 7, data)));

        Assert.Equal(GuestMac, ReadMac(reply));
        Assert.True(Ipv4Packet.TryCreate(reply.AsSpan(14), out var ip));
        Assert.True(ip.VerifyChecksum());
        Assert.Equal(target, ip.Source.Value);
        Assert.Equal(GuestIp, ip.Destination.Value);
        Assert.Equal(IpProtocol.Icmp, ip.Protocol);
        Assert.True(Icmpv4Packet.TryCreate(ip.Payload, out var icmp));
        Assert.True(icmp.VerifyChecksum());
        Assert.Equal(Icmpv4Type.EchoReply, icmp.Type);
        Assert.Equal(0, icmp.Code);
        Assert.Equal(0x4242, icmp.Identifier);
        Assert.Equal(7, icmp.SequenceNumber);
        Assert.Equal(data, icmp.Payload.ToArray());
        Assert.Equal(1, ctx.Counters.IcmpEchoAnswered);
    }

    [Fact]
    public void RouterSolicitation_IsAnsweredWithPrefixMtuAndRdnss()
    {
        using var ctx = new StackTestContext(ipv6: true);
        var rs = Icmpv6Frame(GuestLinkLocal, V6("ff02::2"), 133, new byte[4], dstMac: 0x3333_0000_0002);

        var reply = Assert.Single(ctx.ExchangeEthernet(rs));

        Assert.Equal(GuestMac, ReadMac(reply));
        Assert.True(Ipv6Packet.TryCreate(reply.AsSpan(14), out var ip));
        Assert.Equal(255, ip.HopLimit);
        Assert.Equal(V6("fe80::2"), Read6(ip.Source));
        Assert.Equal(GuestLinkLocal, Read6(ip.Destination));
        Assert.True(Icmpv6Packet.TryCreate(ip.Payload, out var icmp));
        Assert.True(NdpRouterAdvertisementRepr.TryParse(icmp, out var ra));
        Assert.True(ra.RouterLifetime > 0);
        Assert.Equal(RouterMac, ra.SourceLinkLayerAddress is { } sll ? MacValue(sll) : 0);
        Assert.Equal(1500u, ra.Mtu);
        Assert.True(ra.HasPrefix);
        Assert.Equal(V6("fd00::"), Read6(ra.Prefix));
        Assert.Equal(64, ra.PrefixLength);
        Assert.True(ra.Autonomous);
        Assert.True(ra.OnLink);
        Assert.True(ra.ValidLifetime >= ra.PreferredLifetime && ra.PreferredLifetime > 0);
        Assert.NotNull(ra.DnsServer);
        Assert.Equal(Dns6, Read6(ra.DnsServer.Value));
        Assert.True(ra.DnsLifetime > 0);
    }

    [Fact]
    public void RouterSolicitationWithWrongHopLimit_IsIgnored()
    {
        using var ctx = new StackTestContext(ipv6: true);

        // RFC 4861 §6.1.1: a solicitation whose hop limit is not 255 may have crossed a router.
        Assert.Empty(ctx.Exchange(Icmpv6Frame(GuestLinkLocal, V6("ff02::2"), 133, new byte[4], hopLimit: 64, dstMac: 0x3333_0000_0002)));
    }

    [Theory]
    [InlineData("fd00::2")]
    [InlineData("fd00::3")]
    public void NeighborSolicitationForStackAddress_IsAnswered(string target)
    {
        using var ctx = new StackTestContext(ipv6: true);
        var targetAddress = V6(target);
        var body = new byte[4 + 16 + 8];
        BinaryPrimitives.WriteUInt128BigEndian(body.AsSpan(4), targetAddress);
        body[20] = 1; // source link-layer address option
        body[21] = 1;
        WriteMac(body.AsSpan(22), GuestMac);
        var solicitedNode = V6("ff02::1:ff00:0") | (targetAddress & 0xFFFFFF);

        var reply = Assert.Single(ctx.ExchangeEthernet(Icmpv6Frame(Guest6, solicitedNode, 135, body, dstMac: 0x3333_FF00_0000 | (ulong)(targetAddress & 0xFFFFFF))));

        Assert.Equal(GuestMac, ReadMac(reply));
        Assert.True(Ipv6Packet.TryCreate(reply.AsSpan(14), out var ip));
        Assert.Equal(255, ip.HopLimit);
        Assert.Equal(targetAddress, Read6(ip.Source));
        Assert.Equal(Guest6, Read6(ip.Destination));
        var m = ip.Payload;
        Assert.Equal(136, m[0]);
        Assert.Equal(0xE0, m[4] & 0xE0); // Router, Solicited, Override
        Assert.Equal(targetAddress, BinaryPrimitives.ReadUInt128BigEndian(m[8..]));
        Assert.Equal(2, m[24]); // target link-layer address option
        Assert.Equal(RouterMac, ReadMac(m[26..]));
    }

    [Fact]
    public void NeighborSolicitationForGuestAddress_IsNotAnswered()
    {
        using var ctx = new StackTestContext(ipv6: true);
        var body = new byte[4 + 16];
        BinaryPrimitives.WriteUInt128BigEndian(body.AsSpan(4), Guest6);

        // DAD (RFC 4862 §5.4.2): unspecified source, target = the guest's tentative address.
        Assert.Empty(ctx.Exchange(Icmpv6Frame(UInt128.Zero, V6("ff02::1:ff00:100"), 135, body, dstMac: 0x3333_FF00_0100)));
    }

    [Fact]
    public void Icmpv6EchoToGateway_IsAnsweredWithSamePayload()
    {
        using var ctx = new StackTestContext(ipv6: true);
        byte[] body = new byte[4 + 40];
        BinaryPrimitives.WriteUInt16BigEndian(body, 0x77);
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), 3);
        new Random(9).NextBytes(body.AsSpan(4));

        var reply = Assert.Single(ctx.ExchangeEthernet(Icmpv6Frame(Guest6, Gateway6, 128, body, hopLimit: 64)));

        Assert.True(Ipv6Packet.TryCreate(reply.AsSpan(14), out var ip));
        Assert.Equal(Gateway6, Read6(ip.Source));
        Assert.Equal(Guest6, Read6(ip.Destination));
        Assert.True(Icmpv6Packet.TryCreate(ip.Payload, out var icmp));
        Assert.True(icmp.VerifyChecksum(ip.Source, ip.Destination));
        Assert.Equal(Icmpv6Type.EchoReply, icmp.Type);
        Assert.Equal(0x77, icmp.Identifier);
        Assert.Equal(3, icmp.SequenceNumber);
        Assert.Equal(body[4..], icmp.Payload.ToArray());
    }

    [Fact]
    public void Ipv6Frames_AreUnsupportedWithoutEnableIpv6()
    {
        using var ctx = new StackTestContext(ipv6: false);
        Assert.Empty(ctx.Exchange(Icmpv6Frame(GuestLinkLocal, V6("ff02::2"), 133, new byte[4], dstMac: 0x3333_0000_0002)));
        Assert.Equal(1, ctx.Counters.UnsupportedFrames);
    }

    [Fact]
    public void DhcpDiscover_IsAnsweredWithOfferOfFirstPoolAddress()
    {
        using var ctx = new StackTestContext();
        const ulong ClientMac = 0x5254_0012_3456;
        var discover = DhcpTestPackets.Build(type: 1, ClientMac, xid: 0xCAFE_F00D);
        var frame = Udp4Frame(0, 0xFFFF_FFFF, 68, 67, discover);
        WriteMac(frame, Broadcast);
        WriteMac(frame.AsSpan(6), ClientMac);

        var reply = Assert.Single(ctx.ExchangeEthernet(frame));

        Assert.True(Ipv4Packet.TryCreate(reply.AsSpan(14), out var ip));
        Assert.Equal(GatewayIp, ip.Source.Value);
        Assert.True(UdpPacket.TryCreate(ip.Payload, out var udp));
        Assert.Equal(67, udp.SourcePort);
        Assert.Equal(68, udp.DestinationPort);
        var dhcp = udp.Payload;
        Assert.Equal(2, dhcp[0]); // BOOTREPLY
        Assert.Equal(0xCAFE_F00Du, BinaryPrimitives.ReadUInt32BigEndian(dhcp[4..]));
        Assert.Equal(0x0A00_020Fu, BinaryPrimitives.ReadUInt32BigEndian(dhcp[16..])); // yiaddr 10.0.2.15
        Assert.Equal(ClientMac, ReadMac(dhcp[28..]));
        Assert.Equal(2, FindOption(dhcp, 53)[0]); // DHCPOFFER
        Assert.Equal(GatewayIp, BinaryPrimitives.ReadUInt32BigEndian(FindOption(dhcp, 54))); // server identifier
        Assert.Equal(1, ctx.Counters.DhcpReplies);
    }

    private static ReadOnlySpan<byte> FindOption(ReadOnlySpan<byte> dhcp, byte code)
    {
        int at = 240;
        while (at + 1 < dhcp.Length && dhcp[at] != 255)
        {
            if (dhcp[at] == 0)
            {
                at++;
                continue;
            }

            if (dhcp[at] == code)
            {
                return dhcp.Slice(at + 2, dhcp[at + 1]);
            }

            at += 2 + dhcp[at + 1];
        }

        Assert.Fail($"option {code} missing");
        return default;
    }

    private static UInt128 Read6(Ipv6Address a) => ((UInt128)a.High << 64) | a.Low;

    private static ulong MacValue(MacAddress mac)
    {
        Span<byte> b = stackalloc byte[6];
        mac.CopyTo(b);
        return ReadMac(b);
    }
}
