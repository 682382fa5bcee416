using System.Buffers.Binary;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Stack;

public sealed partial class NetworkStack
{
    private static readonly UInt128 AllNodes = ((UInt128)0xFF02UL << 112) | 1;

    /// <summary>Addresses the stack answers ARP/NS for: the gateway and the DNS address (libslirp does the same).</summary>
    private bool OwnsAddress(UInt128 a) =>
        a == Gateway4 || a == Dns4 || (_options.EnableIpv6 && (a == Gateway6 || a == Dns6 || a == RouterLinkLocal));

    private void HandleArp(Span<byte> packet)
    {
        if (!ArpPacket.TryCreate(packet, out _) || packet.Length < 28)
        {
            Counters.MalformedFrames++;
            return;
        }

        ushort op = BinaryPrimitives.ReadUInt16BigEndian(packet[6..]);
        ulong senderMac = ReadMac(packet[8..]);
        var senderIp = IpAddr.Read(packet.Slice(14, 4));
        var targetIp = IpAddr.Read(packet.Slice(24, 4));
        if (IpAddr.ToV4(senderIp) != 0)
        {
            Learn(senderIp, senderMac);
        }

        if (op != 1 || !OwnsAddress(targetIp))
        {
            return;
        }

        SendArp(op: 2, ethernetTo: senderMac, senderIp: targetIp, targetMac: senderMac, targetIp: senderIp);
    }

    private void SendArpRequest(UInt128 target) =>
        SendArp(op: 1, ethernetTo: 0xFFFF_FFFF_FFFFUL, senderIp: Gateway4, targetMac: 0, targetIp: target);

    /// <summary>Ethernet/IPv4 ARP (RFC 826) from the router MAC.</summary>
    private void SendArp(ushort op, ulong ethernetTo, UInt128 senderIp, ulong targetMac, UInt128 targetIp)
    {
        var f = _tx.AsSpan();
        f[.._l2].Clear();
        WriteMac(ethernetTo, f.Slice(_l2, 6));
        WriteMac(_routerMac, f.Slice(_l2 + 6, 6));
        BinaryPrimitives.WriteUInt16BigEndian(f[(_l2 + 12)..], 0x0806);
        var a = f.Slice(_l2 + EthernetHeaderLength, 28);
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a[2..], 0x0800);
        a[4] = 6;
        a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], op);
        WriteMac(_routerMac, a[8..]);
        IpAddr.Write(senderIp, a[14..]);
        WriteMac(targetMac, a[18..]);
        IpAddr.Write(targetIp, a[24..]);
        Transmit(f[..(_l2 + EthernetHeaderLength + 28)]);
    }

    private void HandleIcmpv4(UInt128 src, UInt128 dst, Span<byte> message)
    {
        if (!Icmpv4Packet.TryCreate(message, out _))
        {
            Counters.MalformedFrames++;
            return;
        }

        if (InternetChecksum.Fold(InternetChecksum.Sum(message)) != 0)
        {
            Counters.BadChecksums++;
            return;
        }

        if (message[0] != 8 || message[1] != 0)
        {
            Counters.IcmpDropped++;
            return;
        }

        if (OwnsAddress(dst))
        {
            SendEchoReply(dst, src, message);
            return;
        }

        ForwardEcho(src, dst, message);
    }

    /// <summary>Answers an echo request (ICMPv4 or ICMPv6) addressed to the stack itself.</summary>
    private void SendEchoReply(UInt128 from, UInt128 to, ReadOnlySpan<byte> request)
    {
        bool v4 = IpAddr.IsV4(to);
        var protocol = v4 ? IpProtocol.Icmp : IpProtocol.Icmpv6;
        int l4 = WriteIpHeader(from, to, protocol, request.Length);
        var m = _tx.AsSpan(l4, request.Length);
        request.CopyTo(m);
        m[0] = v4 ? (byte)0 : (byte)129;
        FinishIcmp(l4, request.Length, v4);
        Counters.IcmpEchoAnswered++;
        SendToGuest(to, l4 + request.Length);
    }

    /// <summary>ICMP checksums are always computed in full (no offload: ICMPv4 has no pseudo-header).</summary>
    internal void FinishIcmp(int l4Offset, int length, bool v4)
    {
        var f = _tx.AsSpan();
        var m = f.Slice(l4Offset, length);
        m[2] = 0;
        m[3] = 0;
        uint sum = 0;
        if (!v4)
        {
            int ip = _l2 + EthernetHeaderLength;
            sum = InternetChecksum.Sum(f.Slice(ip + 8, 32)) + (uint)IpProtocol.Icmpv6 + (uint)length;
        }

        BinaryPrimitives.WriteUInt16BigEndian(m[2..], InternetChecksum.Fold(InternetChecksum.Sum(m, sum)));
        if (_l2 > 0)
        {
            f[.._l2].Clear();
        }
    }

    private void HandleIcmpv6(UInt128 src, UInt128 dst, ReadOnlySpan<byte> srcDst, Span<byte> message, ulong srcMac, byte hopLimit)
    {
        if (!Icmpv6Packet.TryCreate(message, out _))
        {
            Counters.MalformedFrames++;
            return;
        }

        if (!VerifyTransportChecksum(srcDst, IpProtocol.Icmpv6, message))
        {
            Counters.BadChecksums++;
            return;
        }

        byte type = message[0];
        switch (type)
        {
            case 128 when OwnsAddress(dst):
                SendEchoReply(dst, src, message);
                break;
            case 128:
                ForwardEcho(src, dst, message);
                break;
            case 133 when hopLimit == 255: // router solicitation (RFC 4861 §6.1.1: hop limit must be 255)
                SendRouterAdvertisement(src);
                break;
            case 135 when hopLimit == 255 && message.Length >= 24: // neighbor solicitation
                var target = BinaryPrimitives.ReadUInt128BigEndian(message[8..]);
                if (OwnsAddress(target))
                {
                    SendNeighborAdvertisement(target, src == UInt128.Zero ? AllNodes : src, srcMac, solicited: src != UInt128.Zero);
                }

                break;
            case 136 when hopLimit == 255 && message.Length >= 24: // neighbor advertisement: learn the guest
                var advertised = BinaryPrimitives.ReadUInt128BigEndian(message[8..]);
                if (advertised != UInt128.Zero)
                {
                    Learn(advertised, srcMac);
                }

                break;
            default:
                Counters.IcmpDropped++;
                break;
        }
    }

    private void SendNeighborAdvertisement(UInt128 target, UInt128 to, ulong toMac, bool solicited)
    {
        const int Length = 32;
        int l4 = WriteIpHeader(target, to, IpProtocol.Icmpv6, Length, hopLimit: 255);
        var m = _tx.AsSpan(l4, Length);
        m.Clear();
        m[0] = 136;
        // Flags: Router (we are the router), Solicited when answering a unicast-sourced NS, Override.
        m[4] = (byte)(0x80 | (solicited ? 0x40 : 0) | 0x20);
        BinaryPrimitives.WriteUInt128BigEndian(m[8..], target);
        m[24] = 2; // target link-layer address option
        m[25] = 1;
        WriteMac(_routerMac, m[26..]);
        FinishIcmp(l4, Length, v4: false);
        SendToMac(to == AllNodes ? MulticastMac(to) : toMac, l4 + Length);
    }

    private void SendNeighborSolicitation(UInt128 target)
    {
        const int Length = 32;
        // RFC 4291 §2.7.1: the solicited-node address is ff02::1:ff00:0/104 plus the target's low 24 bits.
        var solicitedNode = ((UInt128)0xFF02UL << 112) | ((UInt128)1 << 32) | (UInt128)0xFF000000 | (target & 0xFFFFFF);
        int l4 = WriteIpHeader(RouterLinkLocal, solicitedNode, IpProtocol.Icmpv6, Length, hopLimit: 255);
        var m = _tx.AsSpan(l4, Length);
        m.Clear();
        m[0] = 135;
        BinaryPrimitives.WriteUInt128BigEndian(m[8..], target);
        m[24] = 1; // source link-layer address option
        m[25] = 1;
        WriteMac(_routerMac, m[26..]);
        FinishIcmp(l4, Length, v4: false);
        SendToMac(MulticastMac(solicitedNode), l4 + Length);
    }

    /// <summary>
    /// Router advertisement for the /64 (RFC 4861 §4.2): SLAAC prefix with on-link and autonomous
    /// flags, the link MTU, and the DNS address as RDNSS (RFC 8106) so the guest needs no DHCPv6.
    /// </summary>
    private void SendRouterAdvertisement(UInt128 solicitor)
    {
        const int Length = 16 + 8 + 8 + 32 + 24;
        var to = solicitor == UInt128.Zero ? AllNodes : solicitor;
        int l4 = WriteIpHeader(RouterLinkLocal, to, IpProtocol.Icmpv6, Length, hopLimit: 255);
        var m = _tx.AsSpan(l4, Length);
        m.Clear();
        m[0] = 134;
        m[4] = 64; // current hop limit
        BinaryPrimitives.WriteUInt16BigEndian(m[6..], 1800); // router lifetime (s)
        var o = m[16..];
        o[0] = 1; // source link-layer address
        o[1] = 1;
        WriteMac(_routerMac, o[2..]);
        o = o[8..];
        o[0] = 5; // MTU
        o[1] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(o[4..], (uint)_options.Mtu);
        o = o[8..];
        o[0] = 3; // prefix information
        o[1] = 4;
        o[2] = 64;
        o[3] = 0xC0; // on-link, autonomous
        BinaryPrimitives.WriteUInt32BigEndian(o[4..], 86400);
        BinaryPrimitives.WriteUInt32BigEndian(o[8..], 14400);
        BinaryPrimitives.WriteUInt128BigEndian(o[16..], _prefix6);
        o = o[32..];
        o[0] = 25; // RDNSS
        o[1] = 3;
        BinaryPrimitives.WriteUInt32BigEndian(o[4..], 1800);
        BinaryPrimitives.WriteUInt128BigEndian(o[8..], Dns6);
        FinishIcmp(l4, Length, v4: false);
        if (to == AllNodes)
        {
            SendToMac(MulticastMac(to), l4 + Length);
        }
        else
        {
            SendToGuest(to, l4 + Length);
        }
    }

    private static ulong MulticastMac(UInt128 group) => 0x3333_0000_0000UL | (uint)(group & uint.MaxValue);

    /// <summary>Sends the frame in the transmit buffer to an explicit MAC (broadcast, multicast, DHCP client).</summary>
    internal void SendToMac(ulong mac, int length)
    {
        var f = _tx.AsSpan(0, length);
        WriteMac(mac, f.Slice(_l2, 6));
        Transmit(f);
    }
}
