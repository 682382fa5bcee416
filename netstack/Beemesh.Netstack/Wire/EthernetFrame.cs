using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of an Ethernet II frame (no 802.1Q tag, no FCS, as a tap delivers it).
/// <see cref="TryCreate"/> checks the length once; after that no accessor can read out of range.
/// </summary>
public readonly ref struct EthernetFrame
{
    /// <summary>Destination + source + type.</summary>
    public const int HeaderLength = 14;

    private readonly Span<byte> _buffer;

    private EthernetFrame(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> when it holds at least a full header.</summary>
    public static bool TryCreate(Span<byte> buffer, out EthernetFrame frame)
    {
        if (buffer.Length < HeaderLength)
        {
            frame = default;
            return false;
        }

        frame = new EthernetFrame(buffer);
        return true;
    }

    /// <summary>The whole frame.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>Destination MAC.</summary>
    public MacAddress Destination
    {
        get => MacAddress.ReadFrom(_buffer.Slice(Field.Destination, Field.DestinationSize));
        set => value.CopyTo(_buffer.Slice(Field.Destination, Field.DestinationSize));
    }

    /// <summary>Source MAC.</summary>
    public MacAddress Source
    {
        get => MacAddress.ReadFrom(_buffer.Slice(Field.Source, Field.SourceSize));
        set => value.CopyTo(_buffer.Slice(Field.Source, Field.SourceSize));
    }

    /// <summary>The EtherType; values outside <see cref="Wire.EtherType"/> are passed through unnamed.</summary>
    public EtherType EtherType
    {
        get => (EtherType)BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.EtherType, Field.EtherTypeSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.EtherType, Field.EtherTypeSize), (ushort)value);
    }

    /// <summary>Everything after the header (may include Ethernet padding).</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    private static class Field
    {
        public const int Destination = 0;
        public const int DestinationSize = 6;
        public const int Source = 6;
        public const int SourceSize = 6;
        public const int EtherType = 12;
        public const int EtherTypeSize = 2;
    }
}
