using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of an IPv4 packet (RFC 791).
/// <see cref="TryCreate"/> checks version, header length and total length against the buffer once; after that no
/// accessor can read out of range. Bytes past <see cref="TotalLength"/> (Ethernet padding) are not part of the view.
/// Setters do not re-validate: a caller changing <see cref="HeaderLength"/> or <see cref="TotalLength"/> in place
/// still gets in-range (clamped) <see cref="Options"/> and <see cref="Payload"/> spans.
/// </summary>
public readonly ref struct Ipv4Packet
{
    /// <summary>Size of a header without options.</summary>
    public const int MinHeaderLength = 20;

    private const ushort FlagDontFragment = 0x4000;
    private const ushort FlagMoreFragments = 0x2000;
    private const ushort FragmentOffsetMask = 0x1FFF;

    private readonly Span<byte> _buffer;

    private Ipv4Packet(Span<byte> buffer) => _buffer = buffer;

    /// <summary>
    /// Wraps <paramref name="buffer"/> when it holds a version-4 header with 5 &lt;= IHL, IHL*4 &lt;= total length
    /// &lt;= buffer length. The view covers exactly <see cref="TotalLength"/> bytes.
    /// </summary>
    public static bool TryCreate(Span<byte> buffer, out Ipv4Packet packet)
    {
        packet = default;
        if (buffer.Length < MinHeaderLength || (buffer[Field.VersionIhl] >> 4) != 4)
        {
            return false;
        }

        int headerLength = (buffer[Field.VersionIhl] & 0x0F) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(buffer.Slice(Field.TotalLength, Field.TotalLengthSize));
        if (headerLength < MinHeaderLength || totalLength < headerLength || totalLength > buffer.Length)
        {
            return false;
        }

        packet = new Ipv4Packet(buffer[..totalLength]);
        return true;
    }

    /// <summary>A view without validation, for emitting a header into a buffer the caller sized.</summary>
    internal static Ipv4Packet CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>The packet bytes (header and payload, no trailing padding).</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>IP version (4 for a created view).</summary>
    public int Version
    {
        get => _buffer[Field.VersionIhl] >> 4;
        set => _buffer[Field.VersionIhl] = (byte)((value << 4) | (_buffer[Field.VersionIhl] & 0x0F));
    }

    /// <summary>Header length in bytes (IHL * 4). Set with a multiple of 4 between 20 and 60.</summary>
    public int HeaderLength
    {
        get => (_buffer[Field.VersionIhl] & 0x0F) * 4;
        set => _buffer[Field.VersionIhl] = (byte)((_buffer[Field.VersionIhl] & 0xF0) | ((value / 4) & 0x0F));
    }

    /// <summary>DSCP (upper six bits of the old TOS byte, RFC 2474).</summary>
    public byte Dscp
    {
        get => (byte)(_buffer[Field.DscpEcn] >> 2);
        set => _buffer[Field.DscpEcn] = (byte)((value << 2) | (_buffer[Field.DscpEcn] & 0x03));
    }

    /// <summary>ECN codepoint (RFC 3168).</summary>
    public byte Ecn
    {
        get => (byte)(_buffer[Field.DscpEcn] & 0x03);
        set => _buffer[Field.DscpEcn] = (byte)((_buffer[Field.DscpEcn] & 0xFC) | (value & 0x03));
    }

    /// <summary>Total length field (header + payload).</summary>
    public ushort TotalLength
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.TotalLength, Field.TotalLengthSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.TotalLength, Field.TotalLengthSize), value);
    }

    /// <summary>Identification (RFC 6864).</summary>
    public ushort Identification
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Identification, Field.IdentificationSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Identification, Field.IdentificationSize), value);
    }

    /// <summary>The DF flag.</summary>
    public bool DontFragment
    {
        get => (FlagsAndOffset & FlagDontFragment) != 0;
        set => FlagsAndOffset = (ushort)(value ? FlagsAndOffset | FlagDontFragment : FlagsAndOffset & ~FlagDontFragment);
    }

    /// <summary>The MF flag.</summary>
    public bool MoreFragments
    {
        get => (FlagsAndOffset & FlagMoreFragments) != 0;
        set => FlagsAndOffset = (ushort)(value ? FlagsAndOffset | FlagMoreFragments : FlagsAndOffset & ~FlagMoreFragments);
    }

    /// <summary>Fragment offset in bytes (the wire field counts 8-octet units).</summary>
    public int FragmentOffset
    {
        get => (FlagsAndOffset & FragmentOffsetMask) * 8;
        set => FlagsAndOffset = (ushort)((FlagsAndOffset & ~FragmentOffsetMask) | ((value / 8) & FragmentOffsetMask));
    }

    /// <summary>True when this packet is part of a fragmented datagram (MF set or a non-zero offset).</summary>
    public bool IsFragment => (FlagsAndOffset & (FlagMoreFragments | FragmentOffsetMask)) != 0;

    /// <summary>Time to live.</summary>
    public byte Ttl
    {
        get => _buffer[Field.Ttl];
        set => _buffer[Field.Ttl] = value;
    }

    /// <summary>Payload protocol.</summary>
    public IpProtocol Protocol
    {
        get => (IpProtocol)_buffer[Field.Protocol];
        set => _buffer[Field.Protocol] = (byte)value;
    }

    /// <summary>Header checksum field.</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize), value);
    }

    /// <summary>Source address.</summary>
    public Ipv4Address Source
    {
        get => Ipv4Address.ReadFrom(_buffer.Slice(Field.Source, Field.SourceSize));
        set => value.CopyTo(_buffer.Slice(Field.Source, Field.SourceSize));
    }

    /// <summary>Destination address.</summary>
    public Ipv4Address Destination
    {
        get => Ipv4Address.ReadFrom(_buffer.Slice(Field.Destination, Field.DestinationSize));
        set => value.CopyTo(_buffer.Slice(Field.Destination, Field.DestinationSize));
    }

    /// <summary>The header (including options).</summary>
    public Span<byte> Header => _buffer[..ClampedHeaderLength];

    /// <summary>Header options (between the fixed 20 bytes and <see cref="HeaderLength"/>).</summary>
    public Span<byte> Options => _buffer[MinHeaderLength..Math.Max(MinHeaderLength, ClampedHeaderLength)];

    /// <summary>The payload: bytes from <see cref="HeaderLength"/> to <see cref="TotalLength"/>.</summary>
    public Span<byte> Payload
    {
        get
        {
            int start = ClampedHeaderLength;
            int end = Math.Clamp((int)TotalLength, start, _buffer.Length);
            return _buffer[start..end];
        }
    }

    private ushort FlagsAndOffset
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.FlagsAndOffset, Field.FlagsAndOffsetSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.FlagsAndOffset, Field.FlagsAndOffsetSize), value);
    }

    private int ClampedHeaderLength => Math.Min(HeaderLength, _buffer.Length);

    /// <summary>
    /// Writes a 20-byte header without options in one pass, checksum included: every byte of it is written, so
    /// the buffer needs no clearing first. The view must cover at least <see cref="MinHeaderLength"/> bytes.
    /// </summary>
    internal void WriteHeader(
        byte typeOfService, ushort totalLength, ushort identification, bool dontFragment, bool moreFragments, int fragmentOffset,
        byte ttl, IpProtocol protocol, Ipv4Address source, Ipv4Address destination)
    {
        Span<byte> header = _buffer[..MinHeaderLength];
        header[Field.VersionIhl] = 0x45; // version 4, IHL 5
        header[Field.DscpEcn] = typeOfService;
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.TotalLength, Field.TotalLengthSize), totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.Identification, Field.IdentificationSize), identification);
        ushort flagsAndOffset = (ushort)((dontFragment ? FlagDontFragment : 0) | (moreFragments ? FlagMoreFragments : 0)
            | ((fragmentOffset / 8) & FragmentOffsetMask));
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.FlagsAndOffset, Field.FlagsAndOffsetSize), flagsAndOffset);
        header[Field.Ttl] = ttl;
        header[Field.Protocol] = (byte)protocol;
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.Checksum, Field.ChecksumSize), 0);
        source.CopyTo(header.Slice(Field.Source, Field.SourceSize));
        destination.CopyTo(header.Slice(Field.Destination, Field.DestinationSize));
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.Checksum, Field.ChecksumSize), InternetChecksum.Compute(header));
    }

    /// <summary>Computes the header checksum and writes it (RFC 791 §3.1).</summary>
    public void FillChecksum()
    {
        Checksum = 0;
        Checksum = InternetChecksum.Compute(Header);
    }

    /// <summary>True when the header checksum is correct.</summary>
    public bool VerifyChecksum() => InternetChecksum.Fold(InternetChecksum.Sum(Header)) == 0;

    private static class Field
    {
        public const int VersionIhl = 0;
        public const int DscpEcn = 1;
        public const int TotalLength = 2;
        public const int TotalLengthSize = 2;
        public const int Identification = 4;
        public const int IdentificationSize = 2;
        public const int FlagsAndOffset = 6;
        public const int FlagsAndOffsetSize = 2;
        public const int Ttl = 8;
        public const int Protocol = 9;
        public const int Checksum = 10;
        public const int ChecksumSize = 2;
        public const int Source = 12;
        public const int SourceSize = 4;
        public const int Destination = 16;
        public const int DestinationSize = 4;
    }
}
