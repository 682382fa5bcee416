namespace Beemesh.Netstack.Wire;

/// <summary>A neighbor solicitation (RFC 4861 §4.3) with an optional source link-layer address option.</summary>
/// <param name="TargetAddress">Address being resolved.</param>
/// <param name="SourceLinkLayerAddress">Sender's MAC; must be absent when the IPv6 source is :: (RFC 4861 §4.3).</param>
public readonly record struct NdpNeighborSolicitationRepr(Ipv6Address TargetAddress, MacAddress? SourceLinkLayerAddress) : IIcmpv6MessageRepr
{
    /// <summary>Bytes <see cref="Emit"/> writes (the whole ICMPv6 message).</summary>
    public int BufferLength => NdpNeighborSolicitation.MinLength + (SourceLinkLayerAddress.HasValue ? 8 : 0);

    /// <summary>Reads a solicitation view.</summary>
    public static bool TryParse(NdpNeighborSolicitation solicitation, out NdpNeighborSolicitationRepr repr)
    {
        MacAddress? source = solicitation.TryGetSourceLinkLayerAddress(out MacAddress mac) ? mac : null;
        repr = new NdpNeighborSolicitationRepr(solicitation.TargetAddress, source);
        return true;
    }

    /// <summary>Writes the whole ICMPv6 message, checksum included, for the given IPv6 source and destination.</summary>
    public void Emit(Span<byte> buffer, Ipv6Address source, Ipv6Address destination)
    {
        int length = BufferLength;
        if (buffer.Length < length)
        {
            WireThrowHelper.BufferTooSmall("neighbor solicitation", length, buffer.Length);
        }

        Span<byte> message = buffer[..length];
        message.Clear();
        Icmpv6Packet icmp = Icmpv6Packet.CreateUnchecked(message);
        icmp.Type = Icmpv6Type.NeighborSolicitation;
        NdpNeighborSolicitation.CreateUnchecked(message).TargetAddress = TargetAddress;
        if (SourceLinkLayerAddress is MacAddress mac)
        {
            NdpLinkLayerOption.Write(message[NdpNeighborSolicitation.MinLength..], NdpOptionType.SourceLinkLayerAddress, mac);
        }

        icmp.FillChecksum(source, destination);
    }
}
