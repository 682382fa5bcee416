namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of a neighbor solicitation (RFC 4861 §4.3) inside an ICMPv6 message.
/// <see cref="TryCreate"/> checks type 135, code 0, the 24-byte minimum and that every option is well formed
/// (RFC 4861 §7.1.1) once; after that no accessor can read out of range.
/// </summary>
public readonly ref struct NdpNeighborSolicitation
{
    /// <summary>ICMPv6 header, reserved word and target address.</summary>
    public const int MinLength = 24;

    private readonly Span<byte> _buffer;

    private NdpNeighborSolicitation(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps an ICMPv6 message that is a well-formed neighbor solicitation.</summary>
    public static bool TryCreate(Span<byte> icmpv6Message, out NdpNeighborSolicitation solicitation)
    {
        solicitation = default;
        if (icmpv6Message.Length < MinLength || icmpv6Message[0] != (byte)Icmpv6Type.NeighborSolicitation
            || icmpv6Message[1] != 0 || !NdpOptionReader.Validate(icmpv6Message[MinLength..]))
        {
            return false;
        }

        solicitation = new NdpNeighborSolicitation(icmpv6Message);
        return true;
    }

    /// <summary>A view without validation, for emitting into a buffer the caller sized.</summary>
    internal static NdpNeighborSolicitation CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>The whole ICMPv6 message.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>The address whose link-layer address is asked for.</summary>
    public Ipv6Address TargetAddress
    {
        get => Ipv6Address.ReadFrom(_buffer.Slice(Field.Target, Field.TargetSize));
        set => value.CopyTo(_buffer.Slice(Field.Target, Field.TargetSize));
    }

    /// <summary>The options after the target address.</summary>
    public Span<byte> Options => _buffer[MinLength..];

    /// <summary>The source link-layer address option, absent when the source is unspecified (DAD).</summary>
    public bool TryGetSourceLinkLayerAddress(out MacAddress address) =>
        NdpOptionReader.TryFindLinkLayerAddress(Options, NdpOptionType.SourceLinkLayerAddress, out address);

    private static class Field
    {
        public const int Target = 8;
        public const int TargetSize = 16;
    }
}
