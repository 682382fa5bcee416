using System.Buffers.Binary;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// Checks a frame the stack wrote with the Wire views: every header parses, the IPv4 header
/// checksum is right, and the transport checksum is right: complete without a vnet header; with
/// one, either complete (ICMP, flags 0) or partial as NEEDS_CSUM demands (csum_start at the
/// transport header, csum_offset at its checksum field, the field holding the pseudo-header sum).
/// </summary>
internal static class EmittedFrameChecker
{
    /// <summary>Returns a description of what is wrong, or null when the frame is well formed.</summary>
    public static string? Check(byte[] raw, bool vnet)
    {
        Span<byte> frame = raw;
        bool needsCsum = false;
        ushort csumStart = 0;
        ushort csumOffset = 0;
        if (vnet)
        {
            if (!VirtioNetHeader.TryCreate(frame, out var vh))
            {
                return "shorter than a vnet header";
            }

            if (vh.GsoType != VirtioNetGsoType.None)
            {
                return $"unexpected GSO type {vh.GsoType}";
            }

            if (vh.Flags is not (VirtioNetHeaderFlags.None or VirtioNetHeaderFlags.NeedsChecksum))
            {
                return $"unexpected vnet flags {vh.Flags}";
            }

            needsCsum = vh.Flags == VirtioNetHeaderFlags.NeedsChecksum;
            csumStart = vh.ChecksumStart;
            csumOffset = vh.ChecksumOffset;
            if (!needsCsum && (csumStart != 0 || csumOffset != 0 || vh.HeaderLength != 0 || vh.GsoSize != 0))
            {
                return "vnet header not cleared for a complete frame";
            }

            frame = frame[10..];
        }

        if (!EthernetFrame.TryCreate(frame, out var eth))
        {
            return "shorter than an Ethernet header";
        }

        if (TestFrames.ReadMac(frame[6..]) != TestFrames.RouterMac)
        {
            return $"source MAC {eth.Source} is not the router's";
        }

        var payload = eth.Payload;
        switch (eth.EtherType)
        {
            case EtherType.Arp:
                if (!ArpPacket.TryCreate(payload, out var arp) || !ArpRepr.TryParse(arp, out _))
                {
                    return "bad ARP";
                }

                return needsCsum ? "NEEDS_CSUM on ARP" : null;
            case EtherType.Ipv4:
                return CheckIpv4(payload, needsCsum, csumStart, csumOffset);
            case EtherType.Ipv6:
                return CheckIpv6(payload, needsCsum, csumStart, csumOffset);
            default:
                return $"unexpected EtherType {eth.EtherType}";
        }
    }

    public static void AssertWellFormed(byte[] raw, bool vnet)
    {
        string? problem = Check(raw, vnet);
        Assert.True(problem is null, $"{problem}: {Convert.ToHexString(raw)}");
    }

    private static string? CheckIpv4(Span<byte> packet, bool needsCsum, ushort csumStart, ushort csumOffset)
    {
        if (!Ipv4Packet.TryCreate(packet, out var ip) || !Ipv4Repr.TryParse(ip, out var repr))
        {
            return "bad IPv4 header or header checksum";
        }

        if (ip.Buffer.Length != packet.Length)
        {
            return "IPv4 total length disagrees with the frame";
        }

        var l4 = ip.Payload;
        uint pseudo = InternetChecksum.PseudoHeaderV4(repr.Source, repr.Destination, repr.Protocol, l4.Length);
        return CheckTransport(repr.Protocol, l4, pseudo, 14 + ip.HeaderLength, needsCsum, csumStart, csumOffset);
    }

    private static string? CheckIpv6(Span<byte> packet, bool needsCsum, ushort csumStart, ushort csumOffset)
    {
        if (!Ipv6Packet.TryCreate(packet, out var ip) || 40 + ip.PayloadLength != packet.Length)
        {
            return "bad IPv6 header or payload length";
        }

        var l4 = ip.Payload;
        uint pseudo = InternetChecksum.PseudoHeaderV6(ip.Source, ip.Destination, ip.NextHeader, l4.Length);
        return CheckTransport(ip.NextHeader, l4, pseudo, 14 + 40, needsCsum, csumStart, csumOffset);
    }

    private static string? CheckTransport(IpProtocol protocol, Span<byte> l4, uint pseudo, int l4Start, bool needsCsum, ushort csumStart, ushort csumOffset)
    {
        int fieldOffset;
        switch (protocol)
        {
            case IpProtocol.Tcp:
                if (!TcpPacket.TryCreate(l4, out var tcp) || !tcp.TryReadOptions(out _))
                {
                    return "bad TCP header";
                }

                fieldOffset = 16;
                break;
            case IpProtocol.Udp:
                if (!UdpPacket.TryCreate(l4, out var udp) || udp.Length != l4.Length)
                {
                    return "bad UDP header or length";
                }

                fieldOffset = 6;
                break;
            case IpProtocol.Icmp:
                if (!Icmpv4Packet.TryCreate(l4, out var icmp) || !icmp.VerifyChecksum())
                {
                    return "bad ICMP message or checksum";
                }

                return needsCsum ? "NEEDS_CSUM on ICMP" : null;
            case IpProtocol.Icmpv6:
                if (!Icmpv6Packet.TryCreate(l4, out _) || InternetChecksum.Fold(InternetChecksum.Sum(l4, pseudo)) != 0)
                {
                    return "bad ICMPv6 message or checksum";
                }

                return needsCsum ? "NEEDS_CSUM on ICMPv6" : null;
            default:
                return $"unexpected protocol {protocol}";
        }

        if (needsCsum)
        {
            if (csumStart != l4Start || csumOffset != fieldOffset)
            {
                return $"csum_start/offset {csumStart}/{csumOffset}, expected {l4Start}/{fieldOffset}";
            }

            // The field must hold the folded pseudo-header sum (not complemented): the kernel
            // sums from csum_start on and stores the complement.
            ushort partial = BinaryPrimitives.ReadUInt16BigEndian(l4[fieldOffset..]);
            ushort expected = (ushort)~InternetChecksum.Fold(pseudo);
            if (partial != expected)
            {
                return $"partial checksum {partial:X4}, expected pseudo-header sum {expected:X4}";
            }

            return null;
        }

        ushort field = BinaryPrimitives.ReadUInt16BigEndian(l4[fieldOffset..]);
        if (protocol == IpProtocol.Udp && field == 0)
        {
            return "UDP checksum left out";
        }

        return InternetChecksum.Fold(InternetChecksum.Sum(l4, pseudo)) == 0 ? null : $"bad {protocol} checksum";
    }
}
