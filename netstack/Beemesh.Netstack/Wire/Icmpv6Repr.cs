namespace Beemesh.Netstack.Wire;

/// <summary>The first 8 bytes of an ICMPv6 message: type, code and the 32-bit field (identifier + sequence for echo).</summary>
/// <param name="Type">Message type.</param>
/// <param name="Code">Message code.</param>
/// <param name="Word">The 32-bit field after the checksum (identifier &lt;&lt; 16 | sequence for echo, MTU for Packet Too Big).</param>
/// <param name="PayloadLength">Bytes after the first 8.</param>
public readonly record struct Icmpv6Repr(Icmpv6Type Type, byte Code, uint Word, int PayloadLength) : IIcmpv6MessageRepr
{
    /// <summary>Echo identifier (upper half of <see cref="Word"/>).</summary>
    public ushort Identifier => (ushort)(Word >> 16);

    /// <summary>Echo sequence number (lower half of <see cref="Word"/>).</summary>
    public ushort SequenceNumber => (ushort)Word;

    /// <summary>Size of the header <see cref="Emit"/> writes.</summary>
    public int HeaderLength => Icmpv6Packet.HeaderLength;

    /// <summary>Header plus payload.</summary>
    public int BufferLength => Icmpv6Packet.HeaderLength + PayloadLength;

    /// <summary>An echo request or reply repr.</summary>
    public static Icmpv6Repr Echo(Icmpv6Type type, ushort identifier, ushort sequence, int payloadLength) =>
        new(type, 0, ((uint)identifier << 16) | sequence, payloadLength);

    /// <summary>Reads the header; fails when the checksum over the pseudo-header and message is wrong.</summary>
    public static bool TryParse(Icmpv6Packet packet, Ipv6Address source, Ipv6Address destination, out Icmpv6Repr repr)
    {
        repr = default;
        if (!packet.VerifyChecksum(source, destination))
        {
            return false;
        }

        repr = new Icmpv6Repr(packet.Type, packet.Code, packet.Word, packet.Payload.Length);
        return true;
    }

    /// <summary>
    /// Writes the 8-byte header and fills the checksum over the first <see cref="BufferLength"/> bytes of
    /// <paramref name="buffer"/>, so the payload must already be in place after the header.
    /// </summary>
    public void Emit(Span<byte> buffer, Ipv6Address source, Ipv6Address destination)
    {
        if (PayloadLength < 0 || buffer.Length < BufferLength)
        {
            WireThrowHelper.BufferTooSmall("ICMPv6 message", BufferLength, buffer.Length);
        }

        Icmpv6Packet packet = Icmpv6Packet.CreateUnchecked(buffer[..BufferLength]);
        packet.Type = Type;
        packet.Code = Code;
        packet.Word = Word;
        packet.FillChecksum(source, destination);
    }
}
