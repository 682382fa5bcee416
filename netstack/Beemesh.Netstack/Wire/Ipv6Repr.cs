namespace Beemesh.Netstack.Wire;

/// <summary>The fields of an IPv6 fixed header.</summary>
/// <param name="Source">Source address.</param>
/// <param name="Destination">Destination address.</param>
/// <param name="NextHeader">First next-header value.</param>
/// <param name="PayloadLength">Bytes after the fixed header.</param>
/// <param name="HopLimit">Hop limit (64 like Linux by default).</param>
public readonly record struct Ipv6Repr(
    Ipv6Address Source, Ipv6Address Destination, IpProtocol NextHeader, int PayloadLength, byte HopLimit = 64)
{
    /// <summary>Traffic class.</summary>
    public byte TrafficClass { get; init; }

    /// <summary>Flow label (20 bits).</summary>
    public uint FlowLabel { get; init; }

    /// <summary>Size of the header <see cref="Emit"/> writes.</summary>
    public int HeaderLength => Ipv6Packet.HeaderLength;

    /// <summary>Header plus payload.</summary>
    public int BufferLength => Ipv6Packet.HeaderLength + PayloadLength;

    /// <summary>Reads the fixed header. Never fails for a created view.</summary>
    public static bool TryParse(Ipv6Packet packet, out Ipv6Repr repr)
    {
        repr = new Ipv6Repr(packet.Source, packet.Destination, packet.NextHeader, packet.PayloadLength, packet.HopLimit)
        {
            TrafficClass = packet.TrafficClass,
            FlowLabel = packet.FlowLabel,
        };
        return true;
    }

    /// <summary>Writes the 40-byte fixed header to the start of <paramref name="header"/>.</summary>
    public void Emit(Span<byte> header)
    {
        if (header.Length < Ipv6Packet.HeaderLength || PayloadLength is < 0 or > ushort.MaxValue)
        {
            WireThrowHelper.BufferTooSmall("IPv6 header", Ipv6Packet.HeaderLength, header.Length);
        }

        Ipv6Packet packet = Ipv6Packet.CreateUnchecked(header[..Ipv6Packet.HeaderLength]);
        packet.Version = 6;
        packet.TrafficClass = TrafficClass;
        packet.FlowLabel = FlowLabel;
        packet.PayloadLength = (ushort)PayloadLength;
        packet.NextHeader = NextHeader;
        packet.HopLimit = HopLimit;
        packet.Source = Source;
        packet.Destination = Destination;
    }
}
