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
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.HardwareType, Field.HardwareTypeSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.HardwareType, Field.HardwareTypeSize), value);
    }

    /// <summary>Protocol type (0x0800 = IPv4).</summary>
    public ushort ProtocolType
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.ProtocolType, Field.ProtocolTypeSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.ProtocolType, Field.ProtocolTypeSize), value);
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
        get => (ArpOperation)BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Operation, Field.OperationSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Operation, Field.OperationSize), (ushort)value);
    }

    /// <summary>Sender hardware address.</summary>
    public MacAddress SenderMac
    {
        get => MacAddress.ReadFrom(_buffer.Slice(Field.SenderMac, Field.SenderMacSize));
        set => value.CopyTo(_buffer.Slice(Field.SenderMac, Field.SenderMacSize));
    }

    /// <summary>Sender protocol address.</summary>
    public Ipv4Address SenderIp
    {
        get => Ipv4Address.ReadFrom(_buffer.Slice(Field.SenderIp, Field.SenderIpSize));
        set => value.CopyTo(_buffer.Slice(Field.SenderIp, Field.SenderIpSize));
    }

    /// <summary>Target hardware address (zero in a request).</summary>
    public MacAddress TargetMac
    {
        get => MacAddress.ReadFrom(_buffer.Slice(Field.TargetMac, Field.TargetMacSize));
        set => value.CopyTo(_buffer.Slice(Field.TargetMac, Field.TargetMacSize));
    }

    /// <summary>Target protocol address.</summary>
    public Ipv4Address TargetIp
    {
        get => Ipv4Address.ReadFrom(_buffer.Slice(Field.TargetIp, Field.TargetIpSize));
        set => value.CopyTo(_buffer.Slice(Field.TargetIp, Field.TargetIpSize));
    }

    private static class Field
    {
        public const int HardwareType = 0;
        public const int HardwareTypeSize = 2;
        public const int ProtocolType = 2;
        public const int ProtocolTypeSize = 2;
        public const int HardwareLength = 4;
        public const int ProtocolLength = 5;
        public const int Operation = 6;
        public const int OperationSize = 2;
        public const int SenderMac = 8;
        public const int SenderMacSize = 6;
        public const int SenderIp = 14;
        public const int SenderIpSize = 4;
        public const int TargetMac = 18;
        public const int TargetMacSize = 6;
        public const int TargetIp = 24;
        public const int TargetIpSize = 4;
    }
}
