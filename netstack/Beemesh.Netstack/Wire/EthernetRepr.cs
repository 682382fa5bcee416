namespace Beemesh.Netstack.Wire;

/// <summary>The fields of an Ethernet II header, for parsing and building frames.</summary>
/// <param name="Source">Source MAC.</param>
/// <param name="Destination">Destination MAC.</param>
/// <param name="EtherType">Payload type.</param>
public readonly record struct EthernetRepr(MacAddress Source, MacAddress Destination, EtherType EtherType)
{
    /// <summary>Bytes <see cref="Emit"/> writes.</summary>
    public int HeaderLength => EthernetFrame.HeaderLength;

    /// <summary>Same as <see cref="HeaderLength"/>: the payload is not part of this repr.</summary>
    public int BufferLength => EthernetFrame.HeaderLength;

    /// <summary>Reads the header fields of <paramref name="frame"/>. Never fails for a created frame.</summary>
    public static bool TryParse(EthernetFrame frame, out EthernetRepr repr)
    {
        repr = new EthernetRepr(frame.Source, frame.Destination, frame.EtherType);
        return true;
    }

    /// <summary>Writes the 14-byte header to the start of <paramref name="header"/>.</summary>
    public void Emit(Span<byte> header)
    {
        if (!EthernetFrame.TryCreate(header, out EthernetFrame frame))
        {
            WireThrowHelper.BufferTooSmall("Ethernet header", EthernetFrame.HeaderLength, header.Length);
        }

        frame.Destination = Destination;
        frame.Source = Source;
        frame.EtherType = EtherType;
    }
}
