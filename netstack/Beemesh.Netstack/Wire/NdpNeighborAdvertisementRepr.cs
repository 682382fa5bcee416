namespace Beemesh.Netstack.Wire;

/// <summary>A neighbor advertisement (RFC 4861 §4.4) with an optional target link-layer address option.</summary>
/// <param name="Flags">R, S and O flags.</param>
/// <param name="TargetAddress">The advertised address.</param>
/// <param name="TargetLinkLayerAddress">The MAC for <paramref name="TargetAddress"/>.</param>
public readonly record struct NdpNeighborAdvertisementRepr(NdpNeighborFlags Flags, Ipv6Address TargetAddress, MacAddress? TargetLinkLayerAddress) : IIcmpv6MessageRepr
{
    /// <summary>Bytes <see cref="Emit"/> writes (the whole ICMPv6 message).</summary>
    public int BufferLength => NdpNeighborAdvertisement.MinLength + (TargetLinkLayerAddress.HasValue ? 8 : 0);

    /// <summary>Reads an advertisement view.</summary>
    public static bool TryParse(NdpNeighborAdvertisement advertisement, out NdpNeighborAdvertisementRepr repr)
    {
        MacAddress? target = advertisement.TryGetTargetLinkLayerAddress(out MacAddress mac) ? mac : null;
        repr = new NdpNeighborAdvertisementRepr(advertisement.Flags, advertisement.TargetAddress, target);
        return true;
    }

    /// <summary>Writes the whole ICMPv6 message, checksum included, for the given IPv6 source and destination.</summary>
    public void Emit(Span<byte> buffer, Ipv6Address source, Ipv6Address destination)
    {
        int length = BufferLength;
        if (buffer.Length < length)
        {
            WireThrowHelper.BufferTooSmall("neighbor advertisement", length, buffer.Length);
        }

        Span<byte> message = buffer[..length];
        message.Clear();
        Icmpv6Packet icmp = Icmpv6Packet.CreateUnchecked(message);
        icmp.Type = Icmpv6Type.NeighborAdvertisement;
        NdpNeighborAdvertisement advertisement = NdpNeighborAdvertisement.CreateUnchecked(message);
        advertisement.Flags = Flags;
        advertisement.TargetAddress = TargetAddress;
        if (TargetLinkLayerAddress is MacAddress mac)
        {
            NdpLinkLayerOption.Write(message[NdpNeighborAdvertisement.MinLength..], NdpOptionType.TargetLinkLayerAddress, mac);
        }

        icmp.FillChecksum(source, destination);
    }
}
