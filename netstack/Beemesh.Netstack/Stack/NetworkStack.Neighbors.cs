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
        if (!ArpPacket.TryCreate(packet, out var view) || !ArpRepr.TryParse(view, out var arp))
        {
            Counters.MalformedFrames++;
            return;
        }

        var senderIp = IpAddr.From(arp.SenderIp);
        var targetIp = IpAddr.From(arp.TargetIp);
        if (!arp.SenderIp.IsUnspecified)
        {
            Learn(senderIp, arp.SenderMac.ToUInt64());
        }

        if (arp.Operation != ArpOperation.Request || !OwnsAddress(targetIp))
        {
            return;
        }

        SendArp(ArpOperation.Reply, ethernetTo: arp.SenderMac, senderIp: arp.TargetIp, targetMac: arp.SenderMac, targetIp: arp.SenderIp);
    }

    private void SendArpRequest(UInt128 target) =>
        SendArp(ArpOperation.Request, MacAddress.Broadcast, IpAddr.ToIpv4Address(Gateway4), MacAddress.Zero, IpAddr.ToIpv4Address(target));

    /// <summary>Ethernet/IPv4 ARP (RFC 826) from the router MAC.</summary>
    private void SendArp(ArpOperation op, MacAddress ethernetTo, Ipv4Address senderIp, MacAddress targetMac, Ipv4Address targetIp)
    {
        var builder = new PacketBuilder(_tx, _link.VnetHeader);
        int length = builder.WriteArp(ethernetTo, new ArpRepr(op, RouterMac, senderIp, targetMac, targetIp));
        Transmit(_tx.AsSpan(0, length));
    }

    private void HandleIcmpv4(UInt128 src, UInt128 dst, Span<byte> message)
    {
        if (!Icmpv4Packet.TryCreate(message, out var icmp))
        {
            Counters.MalformedFrames++;
            return;
        }

        if (!icmp.VerifyChecksum())
        {
            Counters.BadChecksums++;
            return;
        }

        if (icmp.Type != Icmpv4Type.EchoRequest || icmp.Code != 0)
        {
            Counters.IcmpDropped++;
            return;
        }

        if (OwnsAddress(dst))
        {
            SendEchoReply(dst, src, icmp.Identifier, icmp.SequenceNumber, message);
            return;
        }

        ForwardEcho(src, dst, icmp.Identifier, message);
    }

    /// <summary>Answers an echo request (ICMPv4 or ICMPv6, already validated) addressed to the stack itself.</summary>
    private void SendEchoReply(UInt128 from, UInt128 to, ushort identifier, ushort sequence, ReadOnlySpan<byte> request)
    {
        bool v4 = IpAddr.IsV4(to);
        var builder = StartPacket(from, to, v4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, request.Length);
        request.CopyTo(builder.Transport);
        int payload = request.Length - Icmpv4Packet.HeaderLength;
        int length = v4
            ? builder.WriteIcmpv4(new Icmpv4Repr(Icmpv4Type.EchoReply, 0, identifier, sequence, payload))
            : builder.WriteIcmpv6(Icmpv6Repr.Echo(Icmpv6Type.EchoReply, identifier, sequence, payload));
        Counters.IcmpEchoAnswered++;
        SendToGuest(to, length);
    }

    private void HandleIcmpv6(UInt128 src, UInt128 dst, Span<byte> message, ulong srcMac, byte hopLimit)
    {
        if (!Icmpv6Packet.TryCreate(message, out var icmp))
        {
            Counters.MalformedFrames++;
            return;
        }

        if (!icmp.VerifyChecksum(IpAddr.ToIpv6Address(src), IpAddr.ToIpv6Address(dst)))
        {
            Counters.BadChecksums++;
            return;
        }

        switch (icmp.Type)
        {
            case Icmpv6Type.EchoRequest when OwnsAddress(dst):
                SendEchoReply(dst, src, icmp.Identifier, icmp.SequenceNumber, message);
                break;
            case Icmpv6Type.EchoRequest:
                ForwardEcho(src, dst, icmp.Identifier, message);
                break;
            case Icmpv6Type.RouterSolicitation when hopLimit == 255: // RFC 4861 §6.1.1: hop limit must be 255
                SendRouterAdvertisement(src);
                break;
            case Icmpv6Type.NeighborSolicitation when hopLimit == 255:
                if (!NdpNeighborSolicitation.TryCreate(message, out var solicitation))
                {
                    Counters.MalformedFrames++;
                    break;
                }

                var target = IpAddr.From(solicitation.TargetAddress);
                if (OwnsAddress(target))
                {
                    SendNeighborAdvertisement(target, src == UInt128.Zero ? AllNodes : src, srcMac, solicited: src != UInt128.Zero);
                }

                break;
            case Icmpv6Type.NeighborAdvertisement when hopLimit == 255: // learn the guest
                if (!NdpNeighborAdvertisement.TryCreate(message, out var advertisement))
                {
                    Counters.MalformedFrames++;
                    break;
                }

                if (!advertisement.TargetAddress.IsUnspecified)
                {
                    Learn(IpAddr.From(advertisement.TargetAddress), srcMac);
                }

                break;
            default:
                Counters.IcmpDropped++;
                break;
        }
    }

    private void SendNeighborAdvertisement(UInt128 target, UInt128 to, ulong toMac, bool solicited)
    {
        // Router (we are the router), Solicited when answering a unicast-sourced NS, Override.
        var flags = NdpNeighborFlags.Router | NdpNeighborFlags.Override | (solicited ? NdpNeighborFlags.Solicited : NdpNeighborFlags.None);
        var advertisement = new NdpNeighborAdvertisementRepr(flags, IpAddr.ToIpv6Address(target), RouterMac);
        var builder = StartPacket(target, to, IpProtocol.Icmpv6, advertisement.BufferLength, hopLimit: 255);
        int length = builder.WriteNeighborAdvertisement(advertisement);
        SendToMac(to == AllNodes ? MulticastMac(to) : toMac, length);
    }

    private void SendNeighborSolicitation(UInt128 target)
    {
        var targetAddress = IpAddr.ToIpv6Address(target);
        var solicitedNode = IpAddr.From(targetAddress.SolicitedNodeMulticast());
        var solicitation = new NdpNeighborSolicitationRepr(targetAddress, RouterMac);
        var builder = StartPacket(RouterLinkLocal, solicitedNode, IpProtocol.Icmpv6, solicitation.BufferLength, hopLimit: 255);
        int length = builder.WriteNeighborSolicitation(solicitation);
        SendToMac(MulticastMac(solicitedNode), length);
    }

    /// <summary>
    /// Router advertisement for the /64 (RFC 4861 §4.2): SLAAC prefix with on-link and autonomous
    /// flags, the link MTU, and the DNS address as RDNSS (RFC 8106) so the guest needs no DHCPv6.
    /// </summary>
    private void SendRouterAdvertisement(UInt128 solicitor)
    {
        var to = solicitor == UInt128.Zero ? AllNodes : solicitor;
        var advertisement = new NdpRouterAdvertisementRepr
        {
            CurHopLimit = 64,
            RouterLifetime = 1800,
            SourceLinkLayerAddress = RouterMac,
            Mtu = (uint)_options.Mtu,
            HasPrefix = true,
            Prefix = IpAddr.ToIpv6Address(_prefix6),
            PrefixLength = 64,
            OnLink = true,
            Autonomous = true,
            ValidLifetime = 86400,
            PreferredLifetime = 14400,
            DnsServer = IpAddr.ToIpv6Address(Dns6),
            DnsLifetime = 1800,
        };
        var builder = StartPacket(RouterLinkLocal, to, IpProtocol.Icmpv6, advertisement.BufferLength, hopLimit: 255);
        int length = builder.WriteRouterAdvertisement(advertisement);
        if (to == AllNodes)
        {
            SendToMac(MulticastMac(to), length);
        }
        else
        {
            SendToGuest(to, length);
        }
    }

    private static ulong MulticastMac(UInt128 group) => 0x3333_0000_0000UL | (uint)(group & uint.MaxValue);

    /// <summary>Sends the frame in the transmit buffer to an explicit MAC (broadcast, multicast, DHCP client).</summary>
    internal void SendToMac(ulong mac, int length)
    {
        var f = _tx.AsSpan(0, length);
        PacketBuilder.SetDestination(f, _l2, MacAddress.FromUInt64(mac));
        Transmit(f);
    }
}
