using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of a UDP datagram (RFC 768).
/// <see cref="TryCreate"/> checks 8 &lt;= length field &lt;= buffer once; after that no accessor can read out of range.
/// The view covers exactly the length field's bytes. <see cref="Payload"/> stays clamped if <see cref="Length"/> is
/// later set to something else.
/// </summary>
public readonly ref struct UdpPacket
{
    /// <summary>Size of the UDP header.</summary>
    public const int HeaderLength = 8;

    private readonly Span<byte> _buffer;

    private UdpPacket(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> (the IP payload) when its length field is consistent.</summary>
    public static bool TryCreate(Span<byte> buffer, out UdpPacket packet)
    {
        packet = default;
        if (buffer.Length < HeaderLength)
        {
            return false;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer.Slice(Field.Length, Field.LengthSize));
        if (length < HeaderLength || length > buffer.Length)
        {
            return false;
        }

        packet = new UdpPacket(buffer[..length]);
        return true;
    }

    /// <summary>A view without validation, for emitting a header into a buffer the caller sized.</summary>
    internal static UdpPacket CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>Header and payload.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>Source port.</summary>
    public ushort SourcePort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.SourcePort, Field.SourcePortSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.SourcePort, Field.SourcePortSize), value);
    }

    /// <summary>Destination port.</summary>
    public ushort DestinationPort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.DestinationPort, Field.DestinationPortSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.DestinationPort, Field.DestinationPortSize), value);
    }

    /// <summary>Length field (header + payload).</summary>
    public ushort Length
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Length, Field.LengthSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Length, Field.LengthSize), value);
    }

    /// <summary>Checksum field; 0 over IPv4 means "not computed".</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize), value);
    }

    /// <summary>The datagram payload.</summary>
    public Span<byte> Payload => _buffer[HeaderLength..Math.Clamp((int)Length, HeaderLength, _buffer.Length)];

    private Span<byte> Datagram => _buffer[..(HeaderLength + Payload.Length)];

    /// <summary>Computes and writes the checksum with the IPv4 pseudo-header; a computed 0 is sent as 0xFFFF (RFC 768).</summary>
    public void FillChecksumV4(Ipv4Address source, Ipv4Address destination)
    {
        Checksum = 0;
        ushort sum = InternetChecksum.Fold(InternetChecksum.Sum(Datagram, InternetChecksum.PseudoHeaderV4(source, destination, IpProtocol.Udp, Datagram.Length)));
        Checksum = sum == 0 ? (ushort)0xFFFF : sum;
    }

    /// <summary>Computes and writes the checksum with the IPv6 pseudo-header; a computed 0 is sent as 0xFFFF (RFC 8200 §8.1).</summary>
    public void FillChecksumV6(Ipv6Address source, Ipv6Address destination)
    {
        Checksum = 0;
        ushort sum = InternetChecksum.Fold(InternetChecksum.Sum(Datagram, InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Udp, Datagram.Length)));
        Checksum = sum == 0 ? (ushort)0xFFFF : sum;
    }

    /// <summary>True when the checksum is absent (0, allowed over IPv4) or correct.</summary>
    public bool VerifyChecksumV4(Ipv4Address source, Ipv4Address destination) =>
        Checksum == 0
        || InternetChecksum.Fold(InternetChecksum.Sum(Datagram, InternetChecksum.PseudoHeaderV4(source, destination, IpProtocol.Udp, Datagram.Length))) == 0;

    /// <summary>True when the checksum is correct; a zero checksum is invalid over IPv6 (RFC 8200 §8.1).</summary>
    public bool VerifyChecksumV6(Ipv6Address source, Ipv6Address destination) =>
        Checksum != 0
        && InternetChecksum.Fold(InternetChecksum.Sum(Datagram, InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Udp, Datagram.Length))) == 0;

    private static class Field
    {
        public const int SourcePort = 0;
        public const int SourcePortSize = 2;
        public const int DestinationPort = 2;
        public const int DestinationPortSize = 2;
        public const int Length = 4;
        public const int LengthSize = 2;
        public const int Checksum = 6;
        public const int ChecksumSize = 2;
    }
}
