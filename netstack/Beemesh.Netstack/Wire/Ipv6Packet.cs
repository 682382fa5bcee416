using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of an IPv6 packet (RFC 8200 §3).
/// <see cref="TryCreate"/> checks the version and that 40 + payload length fits in the buffer once; after that no
/// accessor can read out of range. Bytes past the payload length are not part of the view. Setters do not
/// re-validate; <see cref="Payload"/> stays clamped to the view.
/// </summary>
public readonly ref struct Ipv6Packet
{
    /// <summary>Size of the fixed header.</summary>
    public const int HeaderLength = 40;

    // Guards the extension-header walk: a packet cannot make us loop more than this many headers.
    private const int MaxExtensionHeaders = 8;

    private readonly Span<byte> _buffer;

    private Ipv6Packet(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> when it holds a version-6 header and the whole payload.</summary>
    public static bool TryCreate(Span<byte> buffer, out Ipv6Packet packet)
    {
        packet = default;
        if (!TryGetLength(buffer, out int length))
        {
            return false;
        }

        packet = new Ipv6Packet(buffer[..length]);
        return true;
    }

    /// <summary>A view without validation, for emitting a header into a buffer the caller sized.</summary>
    internal static Ipv6Packet CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>The packet bytes (header and payload).</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>IP version (6 for a created view).</summary>
    public int Version
    {
        get => _buffer[0] >> 4;
        set => _buffer[0] = (byte)((value << 4) | (_buffer[0] & 0x0F));
    }

    /// <summary>Traffic class (DSCP + ECN).</summary>
    public byte TrafficClass
    {
        get => (byte)((VersionClassFlow >> 20) & 0xFF);
        set => VersionClassFlow = (VersionClassFlow & 0xF00F_FFFFu) | ((uint)value << 20);
    }

    /// <summary>Flow label (20 bits, RFC 6437).</summary>
    public uint FlowLabel
    {
        get => VersionClassFlow & 0x000F_FFFFu;
        set => VersionClassFlow = (VersionClassFlow & 0xFFF0_0000u) | (value & 0x000F_FFFFu);
    }

    /// <summary>Payload length field (everything after the fixed header, extension headers included).</summary>
    public ushort PayloadLength
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(Field.PayloadLength, Field.PayloadLengthSize));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(Field.PayloadLength, Field.PayloadLengthSize), value);
    }

    /// <summary>The first next-header value (an extension header or the upper layer).</summary>
    public IpProtocol NextHeader
    {
        get => (IpProtocol)_buffer[Field.NextHeader];
        set => _buffer[Field.NextHeader] = (byte)value;
    }

    /// <summary>Hop limit.</summary>
    public byte HopLimit
    {
        get => _buffer[Field.HopLimit];
        set => _buffer[Field.HopLimit] = value;
    }

    /// <summary>Source address.</summary>
    public Ipv6Address Source
    {
        get => Ipv6Address.ReadFrom(_buffer.Slice(Field.Source, Field.SourceSize));
        set => value.CopyTo(_buffer.Slice(Field.Source, Field.SourceSize));
    }

    /// <summary>Destination address.</summary>
    public Ipv6Address Destination
    {
        get => Ipv6Address.ReadFrom(_buffer.Slice(Field.Destination, Field.DestinationSize));
        set => value.CopyTo(_buffer.Slice(Field.Destination, Field.DestinationSize));
    }

    /// <summary>Everything after the fixed header, up to the payload length.</summary>
    public Span<byte> Payload => _buffer[HeaderLength..Math.Clamp(HeaderLength + PayloadLength, HeaderLength, _buffer.Length)];

    private uint VersionClassFlow
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(Field.VersionClassFlow, Field.VersionClassFlowSize));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(Field.VersionClassFlow, Field.VersionClassFlowSize), value);
    }

    /// <summary>
    /// Walks Hop-by-Hop, Routing and Destination Options headers (RFC 8200 §4.1) to the upper-layer header.
    /// A Fragment header is reported as <see cref="IpProtocol.Ipv6Fragment"/> at its own offset (callers drop
    /// fragments). Fails on a malformed packet, a Hop-by-Hop header anywhere but first, a header that runs past
    /// the payload, or more than eight extension headers.
    /// </summary>
    /// <param name="ipv6Packet">The packet from its fixed header on.</param>
    /// <param name="protocol">The first next-header value that is not a walked extension header.</param>
    /// <param name="offset">Where that header starts, from the start of <paramref name="ipv6Packet"/>.</param>
    public static bool TryFindUpperLayer(ReadOnlySpan<byte> ipv6Packet, out IpProtocol protocol, out int offset)
    {
        protocol = default;
        offset = 0;
        if (!TryGetLength(ipv6Packet, out int end))
        {
            return false;
        }

        IpProtocol next = (IpProtocol)ipv6Packet[Field.NextHeader];
        int at = HeaderLength;
        for (int count = 0; ; count++)
        {
            if (next is not (IpProtocol.Ipv6HopByHop or IpProtocol.Ipv6Route or IpProtocol.Ipv6Opts))
            {
                protocol = next;
                offset = at;
                return true;
            }

            // RFC 8200 §4.1: Hop-by-Hop may only follow the fixed header.
            if (count >= MaxExtensionHeaders || (next == IpProtocol.Ipv6HopByHop && count != 0) || at + 2 > end)
            {
                return false;
            }

            // Hdr Ext Len counts 8-octet units beyond the first 8 (RFC 8200 §4.3).
            int length = (ipv6Packet[at + 1] + 1) * 8;
            if (length > end - at)
            {
                return false;
            }

            next = (IpProtocol)ipv6Packet[at];
            at += length;
        }
    }

    private static bool TryGetLength(ReadOnlySpan<byte> buffer, out int length)
    {
        length = 0;
        if (buffer.Length < HeaderLength || (buffer[0] >> 4) != 6)
        {
            return false;
        }

        length = HeaderLength + BinaryPrimitives.ReadUInt16BigEndian(buffer.Slice(Field.PayloadLength, Field.PayloadLengthSize));
        return length <= buffer.Length;
    }

    private static class Field
    {
        public const int VersionClassFlow = 0;
        public const int VersionClassFlowSize = 4;
        public const int PayloadLength = 4;
        public const int PayloadLengthSize = 2;
        public const int NextHeader = 6;
        public const int HopLimit = 7;
        public const int Source = 8;
        public const int SourceSize = 16;
        public const int Destination = 24;
        public const int DestinationSize = 16;
    }
}
