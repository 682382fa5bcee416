namespace Beemesh.Netstack.Wire;

/// <summary>
/// A whole ICMPv6 message repr (a plain ICMPv6 header or an NDP message): its length, and an
/// <c>Emit</c> that writes it with the checksum over the IPv6 pseudo-header. Lets
/// <see cref="PacketBuilder"/> finish every ICMPv6 frame in one place.
/// </summary>
internal interface IIcmpv6MessageRepr
{
    /// <summary>Bytes <see cref="Emit"/> writes.</summary>
    int BufferLength { get; }

    /// <summary>Writes the message, checksum included, for the given IPv6 source and destination.</summary>
    void Emit(Span<byte> buffer, Ipv6Address source, Ipv6Address destination);
}
