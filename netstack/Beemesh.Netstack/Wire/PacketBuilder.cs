namespace Beemesh.Netstack.Wire;

/// <summary>
/// Builds one frame in a caller's buffer: the optional <c>virtio_net_hdr</c>, the Ethernet header, an IPv4 or IPv6
/// header and a TCP, UDP, ICMP or NDP message, each header emitted through its Repr and view. Transport checksums
/// include the pseudo-header; with a <c>virtio_net_hdr</c> TCP and UDP checksums are left to the kernel (the field
/// holds the pseudo-header sum and the header says NEEDS_CSUM). Allocates nothing.
/// </summary>
/// <remarks>
/// Order of use: <see cref="StartIpv4"/> or <see cref="StartIpv6"/>; the transport payload goes at
/// <see cref="TransportOffset"/> plus the transport header length (before or after the start, the start writes only
/// headers); then one <c>Write*</c> method, which emits the transport header, fills the checksums and returns the
/// frame length. <see cref="WriteArp"/> builds a whole ARP frame on its own. The Ethernet destination is left zero
/// for the neighbor lookup, which sets it with <see cref="SetDestination"/>.
/// </remarks>
public ref struct PacketBuilder
{
    private readonly Span<byte> _buffer;
    private readonly int _l2;
    private int _l4;
    private int _l4Length;
    private uint _pseudo;
    private bool _v4;
    private Ipv6Address _source6;
    private Ipv6Address _destination6;

    /// <summary>A builder over <paramref name="buffer"/>; <paramref name="virtioNetHeader"/> reserves the first 10 bytes for the <c>virtio_net_hdr</c>.</summary>
    public PacketBuilder(Span<byte> buffer, bool virtioNetHeader)
    {
        _buffer = buffer;
        _l2 = virtioNetHeader ? VirtioNetHeader.Length : 0;
    }

    /// <summary>Where the transport header starts in a frame of the given shape (the payload goes after that header).</summary>
    public static int TransportOffsetFor(bool virtioNetHeader, bool ipv4) =>
        (virtioNetHeader ? VirtioNetHeader.Length : 0) + EthernetFrame.HeaderLength + (ipv4 ? Ipv4Packet.MinHeaderLength : Ipv6Packet.HeaderLength);

    /// <summary>Offset of the Ethernet header (after the <c>virtio_net_hdr</c>, if any).</summary>
    public readonly int LinkOffset => _l2;

    /// <summary>Offset of the transport header, once started.</summary>
    public readonly int TransportOffset => _l4;

    /// <summary>The transport message (header and payload) the IP header announced, once started.</summary>
    public readonly Span<byte> Transport => _buffer.Slice(_l4, _l4Length);

    /// <summary>Writes the Ethernet header (from <paramref name="source"/>, destination zero) and the IPv4 header; returns <see cref="TransportOffset"/>.</summary>
    public int StartIpv4(MacAddress source, in Ipv4Repr ip)
    {
        Span<byte> frame = _buffer[_l2..];
        new EthernetRepr(source, MacAddress.Zero, EtherType.Ipv4).Emit(frame);
        ip.Emit(frame[EthernetFrame.HeaderLength..]);
        _v4 = true;
        _l4 = _l2 + EthernetFrame.HeaderLength + ip.HeaderLength;
        _l4Length = ip.PayloadLength;
        _pseudo = InternetChecksum.PseudoHeaderV4(ip.Source, ip.Destination, ip.Protocol, ip.PayloadLength);
        return _l4;
    }

    /// <summary>Writes the Ethernet header (from <paramref name="source"/>, destination zero) and the IPv6 header; returns <see cref="TransportOffset"/>.</summary>
    public int StartIpv6(MacAddress source, in Ipv6Repr ip)
    {
        Span<byte> frame = _buffer[_l2..];
        new EthernetRepr(source, MacAddress.Zero, EtherType.Ipv6).Emit(frame);
        ip.Emit(frame[EthernetFrame.HeaderLength..]);
        _v4 = false;
        _l4 = _l2 + EthernetFrame.HeaderLength + ip.HeaderLength;
        _l4Length = ip.PayloadLength;
        _source6 = ip.Source;
        _destination6 = ip.Destination;
        _pseudo = InternetChecksum.PseudoHeaderV6(ip.Source, ip.Destination, ip.NextHeader, ip.PayloadLength);
        return _l4;
    }

    /// <summary>
    /// Emits the TCP header in front of its payload (already in place) and fills the checksum; a non-zero
    /// <paramref name="gsoSize"/> marks a super-segment for the kernel to cut (needs a <c>virtio_net_hdr</c>).
    /// Returns the frame length.
    /// </summary>
    public readonly int WriteTcp(in TcpRepr tcp, int gsoSize = 0)
    {
        Span<byte> segment = TransportOf(tcp.BufferLength);
        tcp.Emit(segment);
        TcpPacket packet = TcpPacket.CreateUnchecked(segment);
        if (_l2 > 0)
        {
            packet.Checksum = PseudoHeaderField;
            WriteVirtioNetHeader(tcp.HeaderLength, TcpChecksumOffset, gsoSize);
        }
        else
        {
            packet.Checksum = InternetChecksum.Fold(InternetChecksum.Sum(segment, _pseudo));
        }

        return _l4 + _l4Length;
    }

    /// <summary>Emits the UDP header in front of its payload (already in place) and fills the checksum. Returns the frame length.</summary>
    public readonly int WriteUdp(in UdpRepr udp)
    {
        Span<byte> datagram = TransportOf(udp.BufferLength);
        udp.Emit(datagram);
        UdpPacket packet = UdpPacket.CreateUnchecked(datagram);
        if (_l2 > 0)
        {
            packet.Checksum = PseudoHeaderField;
            WriteVirtioNetHeader(UdpPacket.HeaderLength, UdpChecksumOffset, 0);
        }
        else
        {
            ushort sum = InternetChecksum.Fold(InternetChecksum.Sum(datagram, _pseudo));
            packet.Checksum = sum == 0 ? (ushort)0xFFFF : sum; // RFC 768: a computed zero is sent as all ones
        }

        return _l4 + _l4Length;
    }

    /// <summary>Emits the ICMPv4 header in front of its payload (already in place), checksum in full. Returns the frame length.</summary>
    public readonly int WriteIcmpv4(in Icmpv4Repr icmp)
    {
        icmp.Emit(TransportOf(icmp.BufferLength));
        ClearVirtioNetHeader();
        return _l4 + _l4Length;
    }

    /// <summary>Emits the ICMPv6 header in front of its payload (already in place), checksum in full. Returns the frame length.</summary>
    public readonly int WriteIcmpv6(in Icmpv6Repr icmp) => WriteIcmpv6Message(icmp);

    /// <summary>Emits a whole neighbor advertisement (RFC 4861 §4.4). Returns the frame length.</summary>
    public readonly int WriteNeighborAdvertisement(in NdpNeighborAdvertisementRepr advertisement) => WriteIcmpv6Message(advertisement);

    /// <summary>Emits a whole neighbor solicitation (RFC 4861 §4.3). Returns the frame length.</summary>
    public readonly int WriteNeighborSolicitation(in NdpNeighborSolicitationRepr solicitation) => WriteIcmpv6Message(solicitation);

    /// <summary>Emits a whole router advertisement (RFC 4861 §4.2). Returns the frame length.</summary>
    public readonly int WriteRouterAdvertisement(in NdpRouterAdvertisementRepr advertisement) => WriteIcmpv6Message(advertisement);

    /// <summary>Builds a whole ARP frame from <see cref="ArpRepr.SenderMac"/> to <paramref name="destination"/>. Returns the frame length.</summary>
    public readonly int WriteArp(MacAddress destination, in ArpRepr arp)
    {
        ClearVirtioNetHeader();
        Span<byte> frame = _buffer[_l2..];
        new EthernetRepr(arp.SenderMac, destination, EtherType.Arp).Emit(frame);
        arp.Emit(frame.Slice(EthernetFrame.HeaderLength, ArpPacket.Length));
        return _l2 + EthernetFrame.HeaderLength + ArpPacket.Length;
    }

    /// <summary>Sets the Ethernet destination of a frame built earlier (the neighbor lookup's part).</summary>
    public static void SetDestination(Span<byte> frame, int linkOffset, MacAddress destination)
    {
        if (!EthernetFrame.TryCreate(frame[linkOffset..], out EthernetFrame ethernet))
        {
            WireThrowHelper.BufferTooSmall("Ethernet header", EthernetFrame.HeaderLength, frame.Length - linkOffset);
        }

        ethernet.Destination = destination;
    }

    private const ushort TcpChecksumOffset = 16;
    private const ushort UdpChecksumOffset = 6;

    // With NEEDS_CSUM the field carries the folded pseudo-header sum, not complemented; the kernel adds the rest.
    private readonly ushort PseudoHeaderField => (ushort)~InternetChecksum.Fold(_pseudo);

    private readonly Span<byte> TransportOf(int length)
    {
        if (length != _l4Length)
        {
            throw new ArgumentException($"the transport message is {length} bytes but the IP header announced {_l4Length}");
        }

        return _buffer.Slice(_l4, _l4Length);
    }

    // Every ICMPv6 message (NDP's too) carries its checksum in full over the IPv6 pseudo-header: no
    // offload, so the virtio_net_hdr says nothing.
    private readonly int WriteIcmpv6Message<T>(in T message)
        where T : struct, IIcmpv6MessageRepr
    {
        message.Emit(TransportOf(message.BufferLength), _source6, _destination6);
        ClearVirtioNetHeader();
        return _l4 + _l4Length;
    }

    private readonly void WriteVirtioNetHeader(int transportHeaderLength, ushort checksumOffset, int gsoSize)
    {
        int checksumStart = _l4 - _l2;
        VirtioNetGsoType gso = gsoSize <= 0 ? VirtioNetGsoType.None : _v4 ? VirtioNetGsoType.TcpV4 : VirtioNetGsoType.TcpV6;
        new VirtioNetHeaderRepr(
            VirtioNetHeaderFlags.NeedsChecksum,
            gso,
            (ushort)(checksumStart + transportHeaderLength),
            (ushort)Math.Max(gsoSize, 0),
            (ushort)checksumStart,
            checksumOffset).Emit(_buffer[.._l2]);
    }

    private readonly void ClearVirtioNetHeader()
    {
        if (_l2 > 0)
        {
            default(VirtioNetHeaderRepr).Emit(_buffer[.._l2]);
        }
    }
}
