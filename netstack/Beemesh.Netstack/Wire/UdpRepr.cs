namespace Beemesh.Netstack.Wire;

/// <summary>The fields of a UDP header.</summary>
/// <param name="SourcePort">Source port.</param>
/// <param name="DestinationPort">Destination port.</param>
/// <param name="PayloadLength">Bytes after the header.</param>
public readonly record struct UdpRepr(ushort SourcePort, ushort DestinationPort, int PayloadLength)
{
    /// <summary>Size of the header <see cref="Emit"/> writes.</summary>
    public int HeaderLength => UdpPacket.HeaderLength;

    /// <summary>Header plus payload: the value of the length field.</summary>
    public int BufferLength => UdpPacket.HeaderLength + PayloadLength;

    /// <summary>Reads the header; destination port 0 is invalid (RFC 768 reserves it) and fails.</summary>
    public static bool TryParse(UdpPacket packet, out UdpRepr repr)
    {
        repr = default;
        if (packet.DestinationPort == 0)
        {
            return false;
        }

        repr = new UdpRepr(packet.SourcePort, packet.DestinationPort, packet.Payload.Length);
        return true;
    }

    /// <summary>
    /// Writes the 8-byte header with a zero checksum; once the payload is in place, fill the checksum through
    /// <see cref="UdpPacket.FillChecksumV4"/> or <see cref="UdpPacket.FillChecksumV6"/>.
    /// </summary>
    public void Emit(Span<byte> header)
    {
        if (header.Length < UdpPacket.HeaderLength || BufferLength > ushort.MaxValue || PayloadLength < 0)
        {
            WireThrowHelper.BufferTooSmall("UDP header", UdpPacket.HeaderLength, header.Length);
        }

        UdpPacket packet = UdpPacket.CreateUnchecked(header[..UdpPacket.HeaderLength]);
        packet.SourcePort = SourcePort;
        packet.DestinationPort = DestinationPort;
        packet.Length = (ushort)BufferLength;
        packet.Checksum = 0;
    }
}
