using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of an ICMPv6 message (RFC 4443 §2.1); the buffer is the upper-layer payload of the IPv6 packet.
/// <see cref="TryCreate"/> checks the 8-byte minimum (every defined message has at least type, code, checksum and
/// a 4-byte field) once; after that no accessor can read out of range.
/// </summary>
public readonly ref struct Icmpv6Packet
{
    /// <summary>Type, code, checksum and the first 4-byte message field.</summary>
    public const int HeaderLength = 8;

    private readonly Span<byte> _buffer;

    private Icmpv6Packet(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> when it holds at least 8 bytes.</summary>
    public static bool TryCreate(Span<byte> buffer, out Icmpv6Packet packet)
    {
        packet = buffer.Length < HeaderLength ? default : new Icmpv6Packet(buffer);
        return buffer.Length >= HeaderLength;
    }

    /// <summary>A view without validation, for emitting a message into a buffer the caller sized.</summary>
    internal static Icmpv6Packet CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>The whole message.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>Message type.</summary>
    public Icmpv6Type Type
    {
        get => (Icmpv6Type)_buffer[Field.Type];
        set => _buffer[Field.Type] = (byte)value;
    }

    /// <summary>Message code.</summary>
    public byte Code
    {
        get => _buffer[Field.Code];
        set => _buffer[Field.Code] = value;
    }

    /// <summary>Checksum field.</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize), value);
    }

    /// <summary>Echo identifier (echo request/reply).</summary>
    public ushort Identifier
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Identifier, Field.IdentifierSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Identifier, Field.IdentifierSize), value);
    }

    /// <summary>Echo sequence number (echo request/reply).</summary>
    public ushort SequenceNumber
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.SequenceNumber, Field.SequenceNumberSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.SequenceNumber, Field.SequenceNumberSize), value);
    }

    /// <summary>The 32-bit field after the checksum: MTU of Packet Too Big, pointer of Parameter Problem, NA flags.</summary>
    public uint Word
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(Field.Word, Field.WordSize));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(Field.Word, Field.WordSize), value);
    }

    /// <summary>Everything after the checksum (the message body, RFC 4443 §2.1).</summary>
    public Span<byte> MessageBody => _buffer[Field.Word..];

    /// <summary>Everything after the first 8 bytes (echo data, the invoking packet, or NDP fields and options).</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    /// <summary>Computes and writes the checksum with the IPv6 pseudo-header (RFC 4443 §2.3).</summary>
    public void FillChecksum(Ipv6Address source, Ipv6Address destination)
    {
        Checksum = 0;
        Checksum = InternetChecksum.Fold(InternetChecksum.Sum(_buffer, InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Icmpv6, _buffer.Length)));
    }

    /// <summary>True when the checksum with the IPv6 pseudo-header is correct.</summary>
    public bool VerifyChecksum(Ipv6Address source, Ipv6Address destination) =>
        InternetChecksum.Fold(InternetChecksum.Sum(_buffer, InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Icmpv6, _buffer.Length))) == 0;

    private static class Field
    {
        public const int Type = 0;
        public const int Code = 1;
        public const int Checksum = 2;
        public const int ChecksumSize = 2;
        public const int Word = 4;
        public const int WordSize = 4;
        public const int Identifier = 4;
        public const int IdentifierSize = 2;
        public const int SequenceNumber = 6;
        public const int SequenceNumberSize = 2;
    }
}
