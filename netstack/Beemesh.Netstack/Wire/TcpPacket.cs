using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of a TCP segment (RFC 9293 §3.1); the buffer is the whole IP payload.
/// <see cref="TryCreate"/> checks 5 &lt;= data offset and data offset * 4 &lt;= buffer once; after that no accessor
/// can read out of range. <see cref="Options"/> and <see cref="Payload"/> stay clamped if <see cref="HeaderLength"/>
/// is later set to something else.
/// </summary>
public readonly ref struct TcpPacket
{
    /// <summary>Size of a header without options.</summary>
    public const int MinHeaderLength = 20;

    /// <summary>Largest header: data offset 15.</summary>
    public const int MaxHeaderLength = 60;

    /// <summary>Most option bytes a header can carry.</summary>
    public const int MaxOptionsLength = MaxHeaderLength - MinHeaderLength;

    private readonly Span<byte> _buffer;

    private TcpPacket(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> (the IP payload) when the data offset is consistent with it.</summary>
    public static bool TryCreate(Span<byte> buffer, out TcpPacket packet)
    {
        packet = default;
        if (buffer.Length < MinHeaderLength)
        {
            return false;
        }

        int headerLength = (buffer[Field.DataOffset] >> 4) * 4;
        if (headerLength < MinHeaderLength || headerLength > buffer.Length)
        {
            return false;
        }

        packet = new TcpPacket(buffer);
        return true;
    }

    /// <summary>A view without validation, for emitting a header into a buffer the caller sized.</summary>
    internal static TcpPacket CreateUnchecked(Span<byte> buffer) => new(buffer);

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

    /// <summary>Sequence number.</summary>
    public uint SequenceNumber
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(Field.SequenceNumber, Field.SequenceNumberSize));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(Field.SequenceNumber, Field.SequenceNumberSize), value);
    }

    /// <summary>Acknowledgment number (meaningful when ACK is set).</summary>
    public uint AcknowledgmentNumber
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(Field.AcknowledgmentNumber, Field.AcknowledgmentNumberSize));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(Field.AcknowledgmentNumber, Field.AcknowledgmentNumberSize), value);
    }

    /// <summary>Header length in bytes (data offset * 4). Set with a multiple of 4 between 20 and 60.</summary>
    public int HeaderLength
    {
        get => (_buffer[Field.DataOffset] >> 4) * 4;
        set => _buffer[Field.DataOffset] = (byte)((((value / 4) & 0x0F) << 4) | (_buffer[Field.DataOffset] & 0x0F));
    }

    /// <summary>The eight control bits of byte 13 (the experimental NS bit of RFC 3540 is ignored).</summary>
    public TcpFlags Flags
    {
        get => (TcpFlags)_buffer[Field.Flags];
        set => _buffer[Field.Flags] = (byte)value;
    }

    /// <summary>Window field, unscaled.</summary>
    public ushort Window
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Window, Field.WindowSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Window, Field.WindowSize), value);
    }

    /// <summary>Checksum field.</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.Checksum, Field.ChecksumSize), value);
    }

    /// <summary>Urgent pointer (meaningful when URG is set).</summary>
    public ushort UrgentPointer
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.UrgentPointer, Field.UrgentPointerSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.UrgentPointer, Field.UrgentPointerSize), value);
    }

    /// <summary>The raw option bytes.</summary>
    public Span<byte> Options => _buffer[MinHeaderLength..Math.Max(MinHeaderLength, ClampedHeaderLength)];

    /// <summary>Segment data after the header.</summary>
    public Span<byte> Payload => _buffer[ClampedHeaderLength..];

    private int ClampedHeaderLength => Math.Min(HeaderLength, _buffer.Length);

    /// <summary>
    /// Parses the options: MSS, window scale, SACK-permitted, timestamps and up to four SACK blocks; EOL ends the
    /// list, NOPs and unknown kinds are skipped (RFC 9293 §3.2 requires ignoring unknown options). Fails when any
    /// option's length byte is missing, below 2, runs past the header, or is wrong for a known kind.
    /// </summary>
    public bool TryReadOptions(out TcpOptions options) => TryReadOptions(Options, out options);

    /// <summary>Parses an option list; see the instance overload.</summary>
    public static bool TryReadOptions(ReadOnlySpan<byte> raw, out TcpOptions options)
    {
        options = default;
        int i = 0;
        while (i < raw.Length)
        {
            byte kind = raw[i];
            if (kind == OptionKind.EndOfList)
            {
                break;
            }

            if (kind == OptionKind.NoOperation)
            {
                i++;
                continue;
            }

            if (i + 1 >= raw.Length)
            {
                return false;
            }

            int length = raw[i + 1];
            if (length < 2 || length > raw.Length - i)
            {
                return false;
            }

            ReadOnlySpan<byte> data = raw.Slice(i + 2, length - 2);
            switch (kind)
            {
                case OptionKind.MaximumSegmentSize:
                    if (length != 4)
                    {
                        return false;
                    }

                    options.Mss = BinaryPrimitives.ReadUInt16BigEndian(data);
                    break;
                case OptionKind.WindowScale:
                    if (length != 3)
                    {
                        return false;
                    }

                    options.HasWindowScale = true;
                    options.WindowScale = data[0];
                    break;
                case OptionKind.SackPermitted:
                    if (length != 2)
                    {
                        return false;
                    }

                    options.SackPermitted = true;
                    break;
                case OptionKind.Sack:
                    if ((length - 2) % 8 != 0 || length == 2 || (length - 2) / 8 > 4)
                    {
                        return false;
                    }

                    options.SackCount = (length - 2) / 8;
                    for (int b = 0; b < options.SackCount; b++)
                    {
                        options.Sack[b] = new SackBlock(
                            BinaryPrimitives.ReadUInt32BigEndian(data[(b * 8)..]),
                            BinaryPrimitives.ReadUInt32BigEndian(data[((b * 8) + 4)..]));
                    }

                    break;
                case OptionKind.Timestamp:
                    if (length != 10)
                    {
                        return false;
                    }

                    options.HasTimestamp = true;
                    options.TsVal = BinaryPrimitives.ReadUInt32BigEndian(data);
                    options.TsEcr = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
                    break;
                default:
                    break;
            }

            i += length;
        }

        return true;
    }

    /// <summary>
    /// Bytes <see cref="WriteOptions"/> writes for <paramref name="options"/>: a multiple of 4, at most 40. SACK
    /// blocks that do not fit beside the other options are dropped (at most 3 fit with timestamps).
    /// </summary>
    public static int OptionsLength(in TcpOptions options)
    {
        int length = FixedOptionsLength(options);
        return length + SackLength(SackBlocksThatFit(options, length));
    }

    /// <summary>
    /// Writes <paramref name="options"/> in Linux's order (MSS, SACK-permitted + timestamps, window scale, SACK
    /// blocks), NOP-padded so every option group is 4-byte aligned. Returns the bytes written
    /// (= <see cref="OptionsLength"/>).
    /// </summary>
    public static int WriteOptions(in TcpOptions options, Span<byte> destination)
    {
        int fixedLength = FixedOptionsLength(options);
        int sackBlocks = SackBlocksThatFit(options, fixedLength);
        int total = fixedLength + SackLength(sackBlocks);
        if (destination.Length < total)
        {
            WireThrowHelper.BufferTooSmall("TCP options", total, destination.Length);
        }

        int i = 0;
        if (options.Mss != 0)
        {
            destination[i] = OptionKind.MaximumSegmentSize;
            destination[i + 1] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(destination[(i + 2)..], options.Mss);
            i += 4;
        }

        if (options.HasTimestamp)
        {
            if (options.SackPermitted)
            {
                destination[i] = OptionKind.SackPermitted;
                destination[i + 1] = 2;
            }
            else
            {
                destination[i] = OptionKind.NoOperation;
                destination[i + 1] = OptionKind.NoOperation;
            }

            destination[i + 2] = OptionKind.Timestamp;
            destination[i + 3] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(destination[(i + 4)..], options.TsVal);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(i + 8)..], options.TsEcr);
            i += 12;
        }
        else if (options.SackPermitted)
        {
            destination[i] = OptionKind.NoOperation;
            destination[i + 1] = OptionKind.NoOperation;
            destination[i + 2] = OptionKind.SackPermitted;
            destination[i + 3] = 2;
            i += 4;
        }

        if (options.HasWindowScale)
        {
            destination[i] = OptionKind.NoOperation;
            destination[i + 1] = OptionKind.WindowScale;
            destination[i + 2] = 3;
            destination[i + 3] = options.WindowScale;
            i += 4;
        }

        if (sackBlocks > 0)
        {
            destination[i] = OptionKind.NoOperation;
            destination[i + 1] = OptionKind.NoOperation;
            destination[i + 2] = OptionKind.Sack;
            destination[i + 3] = (byte)(2 + (8 * sackBlocks));
            i += 4;
            for (int b = 0; b < sackBlocks; b++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(destination[i..], options.Sack[b].Left);
                BinaryPrimitives.WriteUInt32BigEndian(destination[(i + 4)..], options.Sack[b].Right);
                i += 8;
            }
        }

        return i;
    }

    private static int FixedOptionsLength(in TcpOptions options) =>
        (options.Mss != 0 ? 4 : 0)
        + (options.HasTimestamp ? 12 : options.SackPermitted ? 4 : 0)
        + (options.HasWindowScale ? 4 : 0);

    private static int SackBlocksThatFit(in TcpOptions options, int fixedLength)
    {
        int wanted = Math.Clamp(options.SackCount, 0, 4);
        int room = (MaxOptionsLength - fixedLength - 4) / 8;
        return Math.Max(0, Math.Min(wanted, room));
    }

    private static int SackLength(int blocks) => blocks == 0 ? 0 : 4 + (8 * blocks);

    /// <summary>
    /// Writes the fixed 20 bytes in one pass (reserved bits and checksum zero); the options are the caller's. The
    /// view must cover at least <see cref="MinHeaderLength"/> bytes.
    /// </summary>
    internal void WriteFixedHeader(
        ushort sourcePort, ushort destinationPort, uint sequenceNumber, uint acknowledgmentNumber, int headerLength, TcpFlags flags,
        ushort window, ushort urgentPointer)
    {
        Span<byte> header = _buffer[..MinHeaderLength];
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.SourcePort, Field.SourcePortSize), sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.DestinationPort, Field.DestinationPortSize), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(header.Slice(Field.SequenceNumber, Field.SequenceNumberSize), sequenceNumber);
        BinaryPrimitives.WriteUInt32BigEndian(header.Slice(Field.AcknowledgmentNumber, Field.AcknowledgmentNumberSize), acknowledgmentNumber);
        header[Field.DataOffset] = (byte)((headerLength / 4) << 4);
        header[Field.Flags] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.Window, Field.WindowSize), window);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.Checksum, Field.ChecksumSize), 0);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(Field.UrgentPointer, Field.UrgentPointerSize), urgentPointer);
    }

    /// <summary>Computes and writes the checksum over header and payload with the IPv4 pseudo-header.</summary>
    public void FillChecksumV4(Ipv4Address source, Ipv4Address destination)
    {
        Checksum = 0;
        Checksum = InternetChecksum.Fold(InternetChecksum.Sum(_buffer, InternetChecksum.PseudoHeaderV4(source, destination, IpProtocol.Tcp, _buffer.Length)));
    }

    /// <summary>Computes and writes the checksum over header and payload with the IPv6 pseudo-header.</summary>
    public void FillChecksumV6(Ipv6Address source, Ipv6Address destination)
    {
        Checksum = 0;
        Checksum = InternetChecksum.Fold(InternetChecksum.Sum(_buffer, InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Tcp, _buffer.Length)));
    }

    /// <summary>True when the checksum over header and payload with the IPv4 pseudo-header is correct.</summary>
    public bool VerifyChecksumV4(Ipv4Address source, Ipv4Address destination) =>
        InternetChecksum.Fold(InternetChecksum.Sum(_buffer, InternetChecksum.PseudoHeaderV4(source, destination, IpProtocol.Tcp, _buffer.Length))) == 0;

    /// <summary>True when the checksum over header and payload with the IPv6 pseudo-header is correct.</summary>
    public bool VerifyChecksumV6(Ipv6Address source, Ipv6Address destination) =>
        InternetChecksum.Fold(InternetChecksum.Sum(_buffer, InternetChecksum.PseudoHeaderV6(source, destination, IpProtocol.Tcp, _buffer.Length))) == 0;

    private static class Field
    {
        public const int SourcePort = 0;
        public const int SourcePortSize = 2;
        public const int DestinationPort = 2;
        public const int DestinationPortSize = 2;
        public const int SequenceNumber = 4;
        public const int SequenceNumberSize = 4;
        public const int AcknowledgmentNumber = 8;
        public const int AcknowledgmentNumberSize = 4;
        public const int DataOffset = 12;
        public const int Flags = 13;
        public const int Window = 14;
        public const int WindowSize = 2;
        public const int Checksum = 16;
        public const int ChecksumSize = 2;
        public const int UrgentPointer = 18;
        public const int UrgentPointerSize = 2;
    }

    private static class OptionKind
    {
        public const byte EndOfList = 0;
        public const byte NoOperation = 1;
        public const byte MaximumSegmentSize = 2;
        public const byte WindowScale = 3;
        public const byte SackPermitted = 4;
        public const byte Sack = 5;
        public const byte Timestamp = 8;
    }
}
