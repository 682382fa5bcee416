namespace Beemesh.Netstack.Wire;

/// <summary>The fields of a TCP header, with parsed options, for parsing and building segments.</summary>
/// <param name="SourcePort">Source port.</param>
/// <param name="DestinationPort">Destination port.</param>
/// <param name="SequenceNumber">Sequence number.</param>
/// <param name="AcknowledgmentNumber">Acknowledgment number.</param>
/// <param name="Flags">Control bits.</param>
/// <param name="Window">Window field as sent (already scaled down).</param>
/// <param name="Options">Options to write / that were read.</param>
/// <param name="PayloadLength">Segment data length.</param>
public readonly record struct TcpRepr(
    ushort SourcePort,
    ushort DestinationPort,
    uint SequenceNumber,
    uint AcknowledgmentNumber,
    TcpFlags Flags,
    ushort Window,
    TcpOptions Options,
    int PayloadLength)
{
    private readonly TcpOptions _options = Options;
    private readonly int _optionsLength = TcpPacket.OptionsLength(Options);

    /// <summary>Options to write / that were read.</summary>
    public TcpOptions Options
    {
        get => _options;
        init
        {
            _options = value;
            _optionsLength = TcpPacket.OptionsLength(value);
        }
    }

    /// <summary>Urgent pointer (Beemesh never sends urgent data).</summary>
    public ushort UrgentPointer { get; init; }

    /// <summary>Header plus options as <see cref="Emit"/> writes them.</summary>
    public int HeaderLength => TcpPacket.MinHeaderLength + _optionsLength;

    /// <summary>Header, options and payload.</summary>
    public int BufferLength => HeaderLength + PayloadLength;

    /// <summary>Reads the header and options; fails on malformed options or a zero port.</summary>
    public static bool TryParse(TcpPacket packet, out TcpRepr repr)
    {
        repr = default;
        if (packet.SourcePort == 0 || packet.DestinationPort == 0 || !packet.TryReadOptions(out TcpOptions options))
        {
            return false;
        }

        repr = new TcpRepr(
            packet.SourcePort,
            packet.DestinationPort,
            packet.SequenceNumber,
            packet.AcknowledgmentNumber,
            packet.Flags,
            packet.Window,
            options,
            packet.Payload.Length)
        {
            UrgentPointer = packet.UrgentPointer,
        };
        return true;
    }

    /// <summary>
    /// Writes header and options (not the payload) with a zero checksum to the start of <paramref name="header"/>;
    /// once the payload follows, fill the checksum through <see cref="TcpPacket.FillChecksumV4"/> or
    /// <see cref="TcpPacket.FillChecksumV6"/>.
    /// </summary>
    public void Emit(Span<byte> header)
    {
        int headerLength = HeaderLength;
        if (header.Length < headerLength)
        {
            WireThrowHelper.BufferTooSmall("TCP header", headerLength, header.Length);
        }

        TcpPacket packet = TcpPacket.CreateUnchecked(header[..headerLength]);
        packet.WriteFixedHeader(SourcePort, DestinationPort, SequenceNumber, AcknowledgmentNumber, headerLength, Flags, Window, UrgentPointer);
        TcpPacket.WriteOptions(in _options, header[TcpPacket.MinHeaderLength..headerLength]);
    }
}
