namespace Beemesh.Netstack.Wire;

/// <summary>The fields of an IPv4 header Beemesh reads and writes; emitted headers never carry options.</summary>
/// <param name="Source">Source address.</param>
/// <param name="Destination">Destination address.</param>
/// <param name="Protocol">Payload protocol.</param>
/// <param name="PayloadLength">Bytes after the header.</param>
/// <param name="Ttl">Time to live (64 like Linux by default).</param>
public readonly record struct Ipv4Repr(
    Ipv4Address Source, Ipv4Address Destination, IpProtocol Protocol, int PayloadLength, byte Ttl = 64)
{
    /// <summary>Identification; zero is fine for DF packets (RFC 6864 §4.1).</summary>
    public ushort Identification { get; init; }

    /// <summary>DF flag; set by default so path MTU discovery works as on Linux.</summary>
    public bool DontFragment { get; init; } = true;

    /// <summary>MF flag (parsed packets only; Beemesh never fragments).</summary>
    public bool MoreFragments { get; init; }

    /// <summary>Fragment offset in bytes (parsed packets only).</summary>
    public int FragmentOffset { get; init; }

    /// <summary>The DSCP/ECN byte.</summary>
    public byte TypeOfService { get; init; }

    /// <summary>True when MF is set or the offset is non-zero.</summary>
    public bool IsFragment => MoreFragments || FragmentOffset != 0;

    /// <summary>Size of the header <see cref="Emit"/> writes.</summary>
    public int HeaderLength => Ipv4Packet.MinHeaderLength;

    /// <summary>Header plus payload.</summary>
    public int BufferLength => Ipv4Packet.MinHeaderLength + PayloadLength;

    /// <summary>Reads the header; fails when <paramref name="verifyChecksum"/> is set and the checksum is wrong.</summary>
    public static bool TryParse(Ipv4Packet packet, out Ipv4Repr repr, bool verifyChecksum = true)
    {
        repr = default;
        if (verifyChecksum && !packet.VerifyChecksum())
        {
            return false;
        }

        repr = new Ipv4Repr(packet.Source, packet.Destination, packet.Protocol, packet.Payload.Length, packet.Ttl)
        {
            Identification = packet.Identification,
            DontFragment = packet.DontFragment,
            MoreFragments = packet.MoreFragments,
            FragmentOffset = packet.FragmentOffset,
            TypeOfService = (byte)((packet.Dscp << 2) | packet.Ecn),
        };
        return true;
    }

    /// <summary>Writes the 20-byte header, with total length and a filled checksum, to the start of <paramref name="header"/>.</summary>
    public void Emit(Span<byte> header)
    {
        if (header.Length < Ipv4Packet.MinHeaderLength || PayloadLength < 0 || BufferLength > ushort.MaxValue)
        {
            WireThrowHelper.BufferTooSmall("IPv4 header", Ipv4Packet.MinHeaderLength, header.Length);
        }

        Ipv4Packet.CreateUnchecked(header).WriteHeader(
            TypeOfService, (ushort)BufferLength, Identification, DontFragment, MoreFragments, FragmentOffset, Ttl, Protocol, Source, Destination);
    }
}
