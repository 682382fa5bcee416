using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of an ARP packet for Ethernet/IPv4 (RFC 826), the only combination a tap carries.
/// <see cref="TryCreate"/> checks the length once; after that no accessor can read out of range.
/// Hardware/protocol types and lengths are checked by <see cref="ArpRepr.TryParse"/>.
/// </summary>
public readonly ref struct ArpPacket
{
    /// <summary>Size of an Ethernet/IPv4 ARP packet.</summary>
    public const int Length = 28;

    private readonly Span<byte> _buffer;

    private ArpPacket(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps the first 28 bytes of <paramref name="buffer"/> when it is long enough.</summary>
    public static bool TryCreate(Span<byte> buffer, out ArpPacket packet)
    {
        if (buffer.Length < Length)
        {
            packet = default;
            return false;
        }

        packet = new ArpPacket(buffer[..Length]);
        return true;
    }

    /// <summary>The 28 bytes of the packet.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>Hardware type (1 = Ethernet).</summary>
    public ushort HardwareType
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.HardwareType]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer[Field.HardwareType], value);
    }

    /// <summary>Protocol type (0x0800 = IPv4).</summary>
    public ushort ProtocolType
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.ProtocolType]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer[Field.ProtocolType], value);
    }

    /// <summary>Hardware address length (6).</summary>
    public byte HardwareLength
    {
        get => _buffer[Field.HardwareLength];
        set => _buffer[Field.HardwareLength] = value;
    }

    /// <summary>Protocol address length (4).</summary>
    public byte ProtocolLength
    {
        get => _buffer[Field.ProtocolLength];
        set => _buffer[Field.ProtocolLength] = value;
    }

    /// <summary>Opcode.</summary>
    public ArpOperation Operation
    {
        get => (ArpOperation)BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.Operation]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer[Field.Operation], (ushort)value);
    }

    /// <summary>Sender hardware address.</summary>
    public MacAddress SenderMac
    {
        get => MacAddress.ReadFrom(_buffer[Field.SenderMac]);
        set => value.CopyTo(_buffer[Field.SenderMac]);
    }

    /// <summary>Sender protocol address.</summary>
    public Ipv4Address SenderIp
    {
        get => Ipv4Address.ReadFrom(_buffer[Field.SenderIp]);
        set => value.CopyTo(_buffer[Field.SenderIp]);
    }

    /// <summary>Target hardware address (zero in a request).</summary>
    public MacAddress TargetMac
    {
        get => MacAddress.ReadFrom(_buffer[Field.TargetMac]);
        set => value.CopyTo(_buffer[Field.TargetMac]);
    }

    /// <summary>Target protocol address.</summary>
    public Ipv4Address TargetIp
    {
        get => Ipv4Address.ReadFrom(_buffer[Field.TargetIp]);
        set => value.CopyTo(_buffer[Field.TargetIp]);
    }

    private static class Field
    {
        public static readonly Range HardwareType = 0..2;
        public static readonly Range ProtocolType = 2..4;
        public const int HardwareLength = 4;
        public const int ProtocolLength = 5;
        public static readonly Range Operation = 6..8;
        public static readonly Range SenderMac = 8..14;
        public static readonly Range SenderIp = 14..18;
        public static readonly Range TargetMac = 18..24;
        public static readonly Range TargetIp = 24..28;
    }
}
