using System.Buffers.Binary;
using Beemesh.Netstack.Link;
using Beemesh.Netstack.Nat;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Tests.Stack;
using Beemesh.Netstack.Tests.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

/// <summary>
/// The builder every frame the stack sends goes through, checked against frames Linux put on the wire
/// (<see cref="Captures"/>): byte for byte, into a buffer full of stale bytes from an earlier frame.
/// </summary>
public class PacketBuilderTests
{
    private static readonly Ipv4Address Localhost4 = Ipv4Address.Loopback;
    private static readonly Ipv6Address Localhost6 = Ipv6Address.Loopback;

    /// <summary>A buffer that held some other frame before: nothing the builder leaves unwritten may leak into the new one.</summary>
    private static byte[] Stale(int length = 2048)
    {
        var buffer = new byte[length];
        buffer.AsSpan().Fill(0xFF);
        return buffer;
    }

    private static TcpRepr TcpDataRepr()
    {
        var options = new TcpOptions { HasTimestamp = true, TsVal = 342384619, TsEcr = 172976642 };
        return new TcpRepr(51078, 45678, 2887017395, 0xefabb3a9, TcpFlags.Psh | TcpFlags.Ack, 64, options, 5);
    }

    private static int BuildTcpData(Span<byte> buffer, bool vnet, int gso = 0)
    {
        var tcp = TcpDataRepr();
        var builder = new PacketBuilder(buffer, vnet);
        int l4 = builder.StartIpv4(MacAddress.Zero, new Ipv4Repr(Localhost4, Localhost4, IpProtocol.Tcp, tcp.BufferLength) { Identification = 0xd8b3 });
        "hello"u8.CopyTo(buffer[(l4 + tcp.HeaderLength)..]);
        return builder.WriteTcp(tcp, gso);
    }

    [Fact]
    public void Tcp_segment_over_ipv4_matches_the_capture()
    {
        var buffer = Stale();
        int length = BuildTcpData(buffer, vnet: false);
        Assert.Equal(Captures.TcpData, buffer[..length]);
    }

    [Fact]
    public void Tcp_syn_options_are_written_in_linux_order_and_match_the_capture()
    {
        var options = new TcpOptions
        {
            Mss = 65495, SackPermitted = true, HasTimestamp = true, TsVal = 342384619, HasWindowScale = true, WindowScale = 10,
        };
        var tcp = new TcpRepr(51078, 45678, 2887017394, 0, TcpFlags.Syn, 65495, options, 0);
        var buffer = Stale();
        var builder = new PacketBuilder(buffer, virtioNetHeader: false);
        builder.StartIpv4(MacAddress.Zero, new Ipv4Repr(Localhost4, Localhost4, IpProtocol.Tcp, tcp.BufferLength) { Identification = 0xd8b1 });
        int length = builder.WriteTcp(tcp);
        Assert.Equal(Captures.TcpSyn, buffer[..length]);
    }

    [Fact]
    public void With_a_vnet_header_the_kernel_completes_the_tcp_checksum_into_the_captured_frame()
    {
        var buffer = Stale();
        int length = BuildTcpData(buffer, vnet: true);

        Assert.True(VirtioNetHeader.TryCreate(buffer, out var header));
        Assert.True(VirtioNetHeaderRepr.TryParse(header, out var vnet));
        Assert.Equal(new VirtioNetHeaderRepr(VirtioNetHeaderFlags.NeedsChecksum, VirtioNetGsoType.None, 14 + 20 + 32, 0, 14 + 20, 16), vnet);

        // What the kernel does with NEEDS_CSUM: sum from csum_start to the end (the field holds the
        // pseudo-header sum) and store the result at csum_start + csum_offset.
        var frame = buffer.AsSpan(VirtioNetHeader.Length, length - VirtioNetHeader.Length);
        var covered = frame[vnet.ChecksumStart..];
        BinaryPrimitives.WriteUInt16BigEndian(covered[vnet.ChecksumOffset..], InternetChecksum.Fold(InternetChecksum.Sum(covered)));
        Assert.Equal(Captures.TcpData, frame.ToArray());
    }

    [Fact]
    public void A_super_segment_is_marked_for_the_kernel_to_cut()
    {
        var buffer = Stale(4096);
        BuildTcpData(buffer, vnet: true, gso: 1448);
        Assert.True(VirtioNetHeader.TryCreate(buffer, out var header));
        Assert.Equal(VirtioNetGsoType.TcpV4, header.GsoType);
        Assert.Equal(1448, header.GsoSize);
        Assert.Equal(VirtioNetHeaderFlags.NeedsChecksum, header.Flags);

        var tcp = new TcpRepr(1, 2, 3, 4, TcpFlags.Ack, 5, default, 3000);
        var builder = new PacketBuilder(buffer, virtioNetHeader: true);
        builder.StartIpv6(MacAddress.Zero, new Ipv6Repr(Localhost6, Localhost6, IpProtocol.Tcp, tcp.BufferLength));
        builder.WriteTcp(tcp, 1428);
        Assert.True(VirtioNetHeader.TryCreate(buffer, out header));
        Assert.Equal(VirtioNetGsoType.TcpV6, header.GsoType);
        Assert.Equal(1428, header.GsoSize);
        Assert.Equal(14 + 40, header.ChecksumStart);
        Assert.Equal(14 + 40 + 20, header.HeaderLength);
    }

    [Fact]
    public void Udp_over_ipv4_matches_the_capture()
    {
        var udp = new UdpRepr(60527, 45679, 3);
        var buffer = Stale();
        var builder = new PacketBuilder(buffer, virtioNetHeader: false);
        int l4 = builder.StartIpv4(MacAddress.Zero, new Ipv4Repr(Localhost4, Localhost4, IpProtocol.Udp, udp.BufferLength) { Identification = 0x13ee });
        "abc"u8.CopyTo(buffer.AsSpan(l4 + UdpPacket.HeaderLength));
        int length = builder.WriteUdp(udp);
        Assert.Equal(Captures.Udp4, buffer[..length]);
    }

    [Fact]
    public void Udp_over_ipv6_matches_the_capture()
    {
        var udp = new UdpRepr(36794, 45680, 2);
        var buffer = Stale();
        var builder = new PacketBuilder(buffer, virtioNetHeader: false);
        int l4 = builder.StartIpv6(MacAddress.Zero, new Ipv6Repr(Localhost6, Localhost6, IpProtocol.Udp, udp.BufferLength) { FlowLabel = 0x810ee });
        "v6"u8.CopyTo(buffer.AsSpan(l4 + UdpPacket.HeaderLength));
        int length = builder.WriteUdp(udp);
        Assert.Equal(Captures.Udp6, buffer[..length]);
    }

    [Fact]
    public void Icmp_error_with_its_quote_matches_the_capture()
    {
        byte[] captured = Captures.Icmp4PortUnreachable;
        var quote = captured.AsSpan(14 + 20 + Icmpv4Packet.HeaderLength);
        var icmp = new Icmpv4Repr(Icmpv4Type.DestinationUnreachable, 3, 0, 0, quote.Length);
        var buffer = Stale();
        var builder = new PacketBuilder(buffer, virtioNetHeader: false);
        builder.StartIpv4(MacAddress.Zero, new Ipv4Repr(Localhost4, Localhost4, IpProtocol.Icmp, icmp.BufferLength)
        {
            Identification = 0x8eea,
            DontFragment = false,
            TypeOfService = 0xc0,
        });
        quote.CopyTo(builder.Transport[Icmpv4Packet.HeaderLength..]);
        int length = builder.WriteIcmpv4(icmp);
        Assert.Equal(captured, buffer[..length]);
    }

    [Fact]
    public void Icmpv6_error_matches_the_capture()
    {
        byte[] captured = Captures.Icmp6PortUnreachable;
        Assert.True(Ipv6Packet.TryCreate(captured.AsSpan(14), out var ip));
        var message = ip.Payload;
        var quote = message[Icmpv6Packet.HeaderLength..];
        var icmp = new Icmpv6Repr(Icmpv6Type.DestinationUnreachable, message[1], 0, quote.Length);
        var buffer = Stale();
        var builder = new PacketBuilder(buffer, virtioNetHeader: false);
        builder.StartIpv6(MacAddress.Zero, new Ipv6Repr(ip.Source, ip.Destination, IpProtocol.Icmpv6, icmp.BufferLength, ip.HopLimit)
        {
            TrafficClass = ip.TrafficClass,
            FlowLabel = ip.FlowLabel,
        });
        quote.CopyTo(builder.Transport[Icmpv6Packet.HeaderLength..]);
        int length = builder.WriteIcmpv6(icmp);
        Assert.Equal(captured, buffer[..length]);
    }

    [Fact]
    public void Arp_reply_is_the_rfc826_layout_and_clears_the_vnet_header()
    {
        var router = MacAddress.Parse("52:55:0a:00:02:02");
        var guest = MacAddress.Parse("02:00:00:00:00:64");
        var arp = new ArpRepr(ArpOperation.Reply, router, Ipv4Address.Parse("10.0.2.2"), guest, Ipv4Address.Parse("10.0.2.100"));
        var buffer = Stale();
        int length = new PacketBuilder(buffer, virtioNetHeader: true).WriteArp(guest, arp);
        Assert.Equal(
            Hex.Bytes("""
                0000 0000 0000 0000 0000
                0200 0000 0064 5255 0a00 0202 0806
                0001 0800 0604 0002 5255 0a00 0202 0a00 0202
                0200 0000 0064 0a00 0264
                """),
            buffer[..length]);
    }

    [Fact]
    public void Set_destination_fills_the_mac_the_start_left_zero()
    {
        var buffer = Stale();
        int length = BuildTcpData(buffer, vnet: true);
        PacketBuilder.SetDestination(buffer.AsSpan(0, length), VirtioNetHeader.Length, MacAddress.Parse("02:00:00:00:00:64"));
        Assert.True(EthernetFrame.TryCreate(buffer.AsSpan(VirtioNetHeader.Length), out var ethernet));
        Assert.Equal(MacAddress.Parse("02:00:00:00:00:64"), ethernet.Destination);
        Assert.Equal(MacAddress.Zero, ethernet.Source);
    }

    [Fact]
    public void A_transport_length_other_than_the_ip_header_announced_is_refused()
    {
        var buffer = Stale();
        var builder = new PacketBuilder(buffer, virtioNetHeader: false);
        builder.StartIpv4(MacAddress.Zero, new Ipv4Repr(Localhost4, Localhost4, IpProtocol.Udp, 20));
        var udp = new UdpRepr(1, 2, 3);
        try
        {
            builder.WriteUdp(udp);
            Assert.Fail("a UDP datagram of 11 bytes was written under an IP header announcing 20");
        }
        catch (ArgumentException e)
        {
            Assert.Contains("announced 20", e.Message);
        }
    }

    [Fact]
    public void Building_segments_allocates_nothing()
    {
        var buffer = new byte[70000];
        var options = new TcpOptions { HasTimestamp = true, TsVal = 1, TsEcr = 2 };
        BuildSegments(buffer, options, 1); // first calls run class constructors

        long before = GC.GetAllocatedBytesForCurrentThread();
        long checksum = BuildSegments(buffer, options, 10_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.NotEqual(0, checksum);
    }

    private static long BuildSegments(byte[] buffer, TcpOptions options, int count)
    {
        long seen = 0;
        for (int i = 0; i < count; i++)
        {
            bool vnet = (i & 1) == 0;
            var tcp = new TcpRepr(80, 40000, (uint)i, 7, TcpFlags.Ack, 512, options, 1400 + (i % 7));
            var builder = new PacketBuilder(buffer, vnet);
            if ((i & 2) == 0)
            {
                builder.StartIpv4(MacAddress.Zero, new Ipv4Repr(Localhost4, new Ipv4Address(10, 0, 2, 100), IpProtocol.Tcp, tcp.BufferLength));
            }
            else
            {
                builder.StartIpv6(MacAddress.Zero, new Ipv6Repr(Localhost6, Ipv6Address.AllNodes, IpProtocol.Tcp, tcp.BufferLength));
            }

            int length = builder.WriteTcp(tcp, vnet ? 1448 : 0);
            seen += TcpPacket.CreateUnchecked(builder.Transport).Checksum + length;
        }

        return seen;
    }

    [Fact]
    public void Guest_segments_through_the_stack_allocate_nothing()
    {
        var link = new DiscardingLink(vnetHeader: true, TestFrames.WithVnet(TestFrames.ArpRequest(TestFrames.GatewayIp)));
        using var ctx = new StackTestContext(vnet: true, link: link);
        ctx.Stack.PumpOnce(); // the guest's ARP request: the stack learns its MAC and answers
        Assert.Equal(1, link.Written);

        var source = new MemorySendSource();
        source.Append(new byte[65536]);
        var key = new FlowKey(IpAddr.FromV4(TestFrames.GuestIp), 40000, IpAddr.FromV4(TestFrames.GatewayIp), 8080);
        var writer = new GuestSegmentWriter(ctx.Stack, key, source);
        var segment = new TcpSegmentInfo { Seq = 1, Ack = 1, Flags = TcpFlags.Ack, Window = 512, PayloadLength = 1400 };
        segment.Options.HasTimestamp = true;
        writer.Write(in segment, 0);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            writer.Write(in segment, i * 7);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1002, link.Written); // the ARP reply, the warm-up and the 1,000 segments all went out
    }

    /// <summary>A link that hands the stack its frames once and counts what the stack writes without keeping it.</summary>
    private sealed class DiscardingLink(bool vnetHeader, params byte[][] inbound) : ILinkDevice
    {
        private int _next;

        public int Written { get; private set; }

        public int Fd => -1;

        public bool VnetHeader => vnetHeader;

        public bool Offload => false;

        public int Read(Span<byte> buffer)
        {
            if (_next == inbound.Length)
            {
                return 0;
            }

            byte[] frame = inbound[_next++];
            frame.CopyTo(buffer);
            return frame.Length;
        }

        public bool Write(ReadOnlySpan<byte> frame)
        {
            Written++;
            return true;
        }

        public void Dispose()
        {
        }
    }
}
