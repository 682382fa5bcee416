using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of an ICMPv4 message (RFC 792); the buffer is the whole IP payload.
/// <see cref="TryCreate"/> checks the 8-byte header fits once; after that no accessor can read out of range.
/// </summary>
public readonly ref struct Icmpv4Packet
{
    /// <summary>Type, code, checksum and the 4-byte rest-of-header.</summary>
    public const int HeaderLength = 8;

    private readonly Span<byte> _buffer;

    private Icmpv4Packet(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> when it holds at least the 8-byte header.</summary>
    public static bool TryCreate(Span<byte> buffer, out Icmpv4Packet packet)
    {
        packet = buffer.Length < HeaderLength ? default : new Icmpv4Packet(buffer);
        return buffer.Length >= HeaderLength;
    }

    /// <summary>A view without validation, for emitting a header into a buffer the caller sized.</summary>
    internal static Icmpv4Packet CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>The whole message.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>Message type.</summary>
    public Icmpv4Type Type
    {
        get => (Icmpv4Type)_buffer[Field.Type];
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

    /// <summary>The rest-of-header word as a whole (next-hop MTU for "fragmentation needed", RFC 1191).</summary>
    public uint RestOfHeader
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(Field.RestOfHeader, Field.RestOfHeaderSize));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(Field.RestOfHeader, Field.RestOfHeaderSize), value);
    }

    /// <summary>Echo data, or the offending datagram's header for error messages.</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    /// <summary>Computes and writes the checksum over the whole message.</summary>
    public void FillChecksum()
    {
        Checksum = 0;
        Checksum = InternetChecksum.Compute(_buffer);
    }

    /// <summary>True when the checksum over the whole message is correct.</summary>
    public bool VerifyChecksum() => InternetChecksum.Compute(_buffer) == 0;

    private static class Field
    {
        public const int Type = 0;
        public const int Code = 1;
        public const int Checksum = 2;
        public const int ChecksumSize = 2;
        public const int RestOfHeader = 4;
        public const int RestOfHeaderSize = 4;
        public const int Identifier = 4;
        public const int IdentifierSize = 2;
        public const int SequenceNumber = 6;
        public const int SequenceNumberSize = 2;
    }
}
