using System.Buffers.Binary;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>Hand-built guest frames (Ethernet and up), checksums computed unless a test breaks them on purpose.</summary>
internal static class TestFrames
{
    public const ulong GuestMac = 0x0200_0000_0064;
    public const ulong RouterMac = 0x5255_0A00_0202;
    public const ulong Broadcast = 0xFFFF_FFFF_FFFF;
    public const uint GuestIp = 0x0A00_0264; // 10.0.2.100
    public const uint GatewayIp = 0x0A00_0202;
    public const uint DnsIp = 0x0A00_0203;
    public const uint UnusedIp = 0x0A00_0205;

    public static readonly UInt128 Guest6 = V6("fd00::100");
    public static readonly UInt128 GuestLinkLocal = V6("fe80::64");
    public static readonly UInt128 Gateway6 = V6("fd00::2");
    public static readonly UInt128 Dns6 = V6("fd00::3");

    public static UInt128 V6(string text) => BinaryPrimitives.ReadUInt128BigEndian(System.Net.IPAddress.Parse(text).GetAddressBytes());

    public static byte[] Ethernet(ushort etherType, ReadOnlySpan<byte> payload, ulong dst = RouterMac, ulong src = GuestMac)
    {
        var f = new byte[14 + payload.Length];
        WriteMac(f, dst);
        WriteMac(f.AsSpan(6), src);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), etherType);
        payload.CopyTo(f.AsSpan(14));
        return f;
    }

    public static byte[] WithVnet(ReadOnlySpan<byte> frame, byte flags = 0, ushort csumStart = 0, ushort csumOffset = 0)
    {
        var f = new byte[10 + frame.Length];
        f[0] = flags;
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(6), csumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(8), csumOffset);
        frame.CopyTo(f.AsSpan(10));
        return f;
    }

    public static byte[] ArpRequest(uint targetIp, uint senderIp = GuestIp, ulong senderMac = GuestMac)
    {
        var a = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), 0x0800);
        a[4] = 6;
        a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(6), 1);
        WriteMac(a.AsSpan(8), senderMac);
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(14), senderIp);
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(24), targetIp);
        return Ethernet(0x0806, a, Broadcast, senderMac);
    }

    /// <summary>IPv4 packet (no options) around <paramref name="l4"/>, DF set, TTL 64.</summary>
    public static byte[] Ipv4(uint src, uint dst, IpProtocol protocol, ReadOnlySpan<byte> l4)
    {
        var p = new byte[20 + l4.Length];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), 0x1234);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), 0x4000);
        p[8] = 64;
        p[9] = (byte)protocol;
        BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(12), src);
        BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(16), dst);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), InternetChecksum.Compute(p.AsSpan(0, 20)));
        l4.CopyTo(p.AsSpan(20));
        return p;
    }

    public static byte[] Ipv6(UInt128 src, UInt128 dst, IpProtocol next, ReadOnlySpan<byte> l4, byte hopLimit = 64)
    {
        var p = new byte[40 + l4.Length];
        p[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)l4.Length);
        p[6] = (byte)next;
        p[7] = hopLimit;
        BinaryPrimitives.WriteUInt128BigEndian(p.AsSpan(8), src);
        BinaryPrimitives.WriteUInt128BigEndian(p.AsSpan(24), dst);
        l4.CopyTo(p.AsSpan(40));
        return p;
    }

    public static byte[] Tcp4Frame(uint src, uint dst, ushort srcPort, ushort dstPort, uint seq, uint ack, TcpFlags flags, ReadOnlySpan<byte> payload = default, ReadOnlySpan<byte> options = default)
    {
        var seg = TcpSegment(srcPort, dstPort, seq, ack, flags, payload, options);
        FillTransportChecksum4(src, dst, IpProtocol.Tcp, seg, 16);
        return Ethernet(0x0800, Ipv4(src, dst, IpProtocol.Tcp, seg));
    }

    public static byte[] TcpSegment(ushort srcPort, ushort dstPort, uint seq, uint ack, TcpFlags flags, ReadOnlySpan<byte> payload = default, ReadOnlySpan<byte> options = default)
    {
        int header = 20 + options.Length;
        var s = new byte[header + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(s, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(2), dstPort);
        BinaryPrimitives.WriteUInt32BigEndian(s.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(s.AsSpan(8), ack);
        s[12] = (byte)((header / 4) << 4);
        s[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(14), 64240);
        options.CopyTo(s.AsSpan(20));
        payload.CopyTo(s.AsSpan(header));
        return s;
    }

    /// <summary>MSS 1460 option, as every SYN carries one.</summary>
    public static byte[] MssOption => [2, 4, 0x05, 0xB4];

    public static byte[] Udp4Frame(uint src, uint dst, ushort srcPort, ushort dstPort, ReadOnlySpan<byte> payload)
    {
        var d = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(d, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(2), dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(4), (ushort)d.Length);
        payload.CopyTo(d.AsSpan(8));
        FillTransportChecksum4(src, dst, IpProtocol.Udp, d, 6);
        return Ethernet(0x0800, Ipv4(src, dst, IpProtocol.Udp, d));
    }

    public static byte[] IcmpEcho4Frame(uint src, uint dst, ushort id, ushort seq, ReadOnlySpan<byte> payload)
    {
        var m = new byte[8 + payload.Length];
        m[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), seq);
        payload.CopyTo(m.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), InternetChecksum.Compute(m));
        return Ethernet(0x0800, Ipv4(src, dst, IpProtocol.Icmp, m));
    }

    /// <summary>An ICMPv6 message (type, code, then <paramref name="body"/> from offset 4) in an IPv6 frame.</summary>
    public static byte[] Icmpv6Frame(UInt128 src, UInt128 dst, byte type, ReadOnlySpan<byte> body, byte hopLimit = 255, ulong dstMac = RouterMac)
    {
        var m = new byte[4 + body.Length];
        m[0] = type;
        body.CopyTo(m.AsSpan(4));
        var pseudo = Pseudo6(src, dst, IpProtocol.Icmpv6, m.Length);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), InternetChecksum.Fold(InternetChecksum.Sum(m, pseudo)));
        return Ethernet(0x86DD, Ipv6(src, dst, IpProtocol.Icmpv6, m, hopLimit), dstMac);
    }

    public static void FillTransportChecksum4(uint src, uint dst, IpProtocol protocol, Span<byte> l4, int checksumOffset)
    {
        l4[checksumOffset] = 0;
        l4[checksumOffset + 1] = 0;
        var pseudo = InternetChecksum.PseudoHeaderV4(new Ipv4Address(src), new Ipv4Address(dst), protocol, l4.Length);
        ushort sum = InternetChecksum.Fold(InternetChecksum.Sum(l4, pseudo));
        if (sum == 0 && protocol == IpProtocol.Udp)
        {
            sum = 0xFFFF;
        }

        BinaryPrimitives.WriteUInt16BigEndian(l4[checksumOffset..], sum);
    }

    public static uint Pseudo6(UInt128 src, UInt128 dst, IpProtocol protocol, int length) =>
        InternetChecksum.PseudoHeaderV6(
            new Ipv6Address((ulong)(src >> 64), (ulong)src), new Ipv6Address((ulong)(dst >> 64), (ulong)dst), protocol, length);

    public static void WriteMac(Span<byte> b, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(b[2..], (uint)mac);
    }

    public static ulong ReadMac(ReadOnlySpan<byte> b) =>
        ((ulong)BinaryPrimitives.ReadUInt16BigEndian(b) << 32) | BinaryPrimitives.ReadUInt32BigEndian(b[2..]);
}
