using System.Buffers.Binary;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>Every malformed frame is dropped, counted under the right reason, and the stack keeps serving.</summary>
public class NetworkStackMalformedFrameTests
{
    public static TheoryData<string> Cases => new()
    {
        "too short for Ethernet",
        "ARP cut short",
        "IPv4 header cut short",
        "bad IPv4 header checksum",
        "IPv4 total length beyond the frame",
        "IPv4 header length beyond total length",
        "TCP data offset beyond the segment",
        "TCP shorter than its header",
        "bad TCP checksum",
        "bad UDP checksum",
        "UDP length beyond the datagram",
        "ICMP shorter than its header",
        "IPv4 fragment ending past 65535 octets",
        "unknown EtherType",
        "unknown IP protocol",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MalformedFrame_IsDroppedAndCounted_AndStackStillAnswersArp(string name)
    {
        using var ctx = new StackTestContext();
        var (frame, counter) = Build(name);

        Assert.Empty(ctx.Exchange(frame));

        Assert.Equal(1, ctx.Counters.FramesReceived);
        Assert.Equal(0, ctx.Counters.FramesSent);
        Assert.Equal(1, counter(ctx.Counters));
        long total = ctx.Counters.MalformedFrames + ctx.Counters.BadChecksums + ctx.Counters.UnsupportedFrames + ctx.Counters.Fragments
            + ctx.Counters.Reassembly.Malformed;
        Assert.Equal(1, total); // counted once, under one reason
        ctx.AssertStillAnswersArp();
    }

    [Fact]
    public void BadIcmpChecksum_IsDroppedAndNotAnswered()
    {
        using var ctx = new StackTestContext();
        var frame = IcmpEcho4Frame(GuestIp, GatewayIp, 1, 1, "ping"u8);
        frame[^1] ^= 0x40;

        Assert.Empty(ctx.Exchange(frame));
        Assert.Equal(0, ctx.Counters.IcmpEchoAnswered);
        Assert.Equal(1, ctx.Counters.MalformedFrames + ctx.Counters.BadChecksums);
        ctx.AssertStillAnswersArp();
    }

    [Fact]
    public void UdpWithZeroChecksumOverIpv4_IsAccepted()
    {
        using var ctx = new StackTestContext();
        var frame = Udp4Frame(0, 0xFFFF_FFFF, 68, 67, Dhcp.DhcpTestPackets.Build(1, 0x5254_0012_3456));
        frame[14 + 20 + 6] = 0; // RFC 768: zero = no checksum
        frame[14 + 20 + 7] = 0;

        Assert.Single(ctx.ExchangeEthernet(frame));
        Assert.Equal(0, ctx.Counters.BadChecksums);
    }

    private static (byte[] Frame, Func<StackCounters, long> Counter) Build(string name)
    {
        const int Ip = 14;
        const int L4 = 14 + 20;
        Func<StackCounters, long> malformed = c => c.MalformedFrames;
        Func<StackCounters, long> badChecksum = c => c.BadChecksums;
        byte[] syn = Tcp4Frame(GuestIp, UnusedIp, 40000, 80, 1, 0, TcpFlags.Syn);
        switch (name)
        {
            case "too short for Ethernet":
                return (new byte[10], malformed);
            case "ARP cut short":
                return (ArpRequest(GatewayIp)[..(14 + 20)], malformed);
            case "IPv4 header cut short":
                return (syn[..(Ip + 12)], malformed);
            case "bad IPv4 header checksum":
                syn[Ip + 10] ^= 0x01;
                return (syn, malformed);
            case "IPv4 total length beyond the frame":
                SetIpTotalLength(syn, syn.Length - Ip + 4);
                return (syn, malformed);
            case "IPv4 header length beyond total length":
                syn[Ip] = 0x4F; // IHL 15 = 60 bytes, but the packet is only 40 long
                SetIpTotalLength(syn, 40);
                return (syn[..(Ip + 40)], malformed);
            case "TCP data offset beyond the segment":
                syn[L4 + 12] = 0xF0; // 60-byte header in a 20-byte segment
                FillTransportChecksum4(GuestIp, UnusedIp, IpProtocol.Tcp, syn.AsSpan(L4), 16);
                return (syn, malformed);
            case "TCP shorter than its header":
                {
                    var seg = TcpSegment(40000, 80, 1, 0, TcpFlags.Syn)[..12];
                    return (Ethernet(0x0800, Ipv4(GuestIp, UnusedIp, IpProtocol.Tcp, seg)), malformed);
                }

            case "bad TCP checksum":
                syn[L4 + 16] ^= 0x10;
                return (syn, badChecksum);
            case "bad UDP checksum":
                {
                    var udp = Udp4Frame(GuestIp, GatewayIp, 5000, 5001, "data"u8);
                    udp[^1] ^= 0x01;
                    return (udp, badChecksum);
                }

            case "UDP length beyond the datagram":
                {
                    var udp = Udp4Frame(GuestIp, GatewayIp, 5000, 5001, "data"u8);
                    BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(L4 + 4), 200);
                    return (udp, malformed);
                }

            case "ICMP shorter than its header":
                return (Ethernet(0x0800, Ipv4(GuestIp, GatewayIp, IpProtocol.Icmp, new byte[] { 8, 0, 0xF7, 0xFF })), malformed);
            case "IPv4 fragment ending past 65535 octets":
                BinaryPrimitives.WriteUInt16BigEndian(syn.AsSpan(Ip + 6), 0x2000 | 0x1FFF); // MF, offset 65528
                RefillIpChecksum(syn);
                return (syn, c => c.Reassembly.Malformed);
            case "unknown EtherType":
                return (Ethernet(0x88CC, new byte[46]), c => c.UnsupportedFrames); // LLDP
            case "unknown IP protocol":
                return (Ethernet(0x0800, Ipv4(GuestIp, GatewayIp, (IpProtocol)132, new byte[12])), c => c.UnsupportedFrames); // SCTP
            default:
                throw new ArgumentException(name);
        }
    }

    private static void SetIpTotalLength(byte[] frame, int length)
    {
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 2), (ushort)length);
        RefillIpChecksum(frame);
    }

    private static void RefillIpChecksum(byte[] frame)
    {
        int headerLength = (frame[14] & 0xF) * 4;
        frame[14 + 10] = 0;
        frame[14 + 11] = 0;
        int end = Math.Min(14 + headerLength, frame.Length);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 10), InternetChecksum.Compute(frame.AsSpan(14, end - 14)));
    }
}
