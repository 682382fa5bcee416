namespace Beemesh.Netstack.Wire;

/// <summary>The header of an ICMPv4 message: type, code and the rest-of-header word (identifier + sequence for echo).</summary>
/// <param name="Type">Message type.</param>
/// <param name="Code">Message code.</param>
/// <param name="Identifier">Echo identifier (upper half of the rest-of-header word).</param>
/// <param name="SequenceNumber">Echo sequence (lower half of the rest-of-header word).</param>
/// <param name="PayloadLength">Bytes after the 8-byte header.</param>
public readonly record struct Icmpv4Repr(Icmpv4Type Type, byte Code, ushort Identifier, ushort SequenceNumber, int PayloadLength)
{
    /// <summary>Size of the header <see cref="Emit"/> writes.</summary>
    public int HeaderLength => Icmpv4Packet.HeaderLength;

    /// <summary>Header plus payload.</summary>
    public int BufferLength => Icmpv4Packet.HeaderLength + PayloadLength;

    /// <summary>Reads the header; fails when the checksum is wrong.</summary>
    public static bool TryParse(Icmpv4Packet packet, out Icmpv4Repr repr)
    {
        repr = default;
        if (!packet.VerifyChecksum())
        {
            return false;
        }

        repr = new Icmpv4Repr(packet.Type, packet.Code, packet.Identifier, packet.SequenceNumber, packet.Payload.Length);
        return true;
    }

    /// <summary>
    /// Writes the header into <paramref name="buffer"/> and fills the checksum over the first <see cref="BufferLength"/>
    /// bytes, so the payload must already be in place after the header (as it is when answering an echo in place).
    /// </summary>
    public void Emit(Span<byte> buffer)
    {
        if (PayloadLength < 0 || buffer.Length < BufferLength)
        {
            WireThrowHelper.BufferTooSmall("ICMPv4 message", BufferLength, buffer.Length);
        }

        Icmpv4Packet packet = Icmpv4Packet.CreateUnchecked(buffer[..BufferLength]);
        packet.Type = Type;
        packet.Code = Code;
        packet.Identifier = Identifier;
        packet.SequenceNumber = SequenceNumber;
        packet.FillChecksum();
    }
}
