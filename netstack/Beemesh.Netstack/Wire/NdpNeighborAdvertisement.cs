namespace Beemesh.Netstack.Wire;

/// <summary>
/// A zero-copy view of a neighbor advertisement (RFC 4861 §4.4) inside an ICMPv6 message.
/// <see cref="TryCreate"/> checks type 136, code 0, the 24-byte minimum and that every option is well formed
/// (RFC 4861 §7.1.2) once; after that no accessor can read out of range.
/// </summary>
public readonly ref struct NdpNeighborAdvertisement
{
    /// <summary>ICMPv6 header, flags word and target address.</summary>
    public const int MinLength = 24;

    private readonly Span<byte> _buffer;

    private NdpNeighborAdvertisement(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps an ICMPv6 message that is a well-formed neighbor advertisement.</summary>
    public static bool TryCreate(Span<byte> icmpv6Message, out NdpNeighborAdvertisement advertisement)
    {
        advertisement = default;
        if (icmpv6Message.Length < MinLength || icmpv6Message[0] != (byte)Icmpv6Type.NeighborAdvertisement
            || icmpv6Message[1] != 0 || !NdpOptionReader.Validate(icmpv6Message[MinLength..]))
        {
            return false;
        }

        advertisement = new NdpNeighborAdvertisement(icmpv6Message);
        return true;
    }

    /// <summary>A view without validation, for emitting into a buffer the caller sized.</summary>
    internal static NdpNeighborAdvertisement CreateUnchecked(Span<byte> buffer) => new(buffer);

    /// <summary>The whole ICMPv6 message.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>R, S and O flags.</summary>
    public NdpNeighborFlags Flags
    {
        get => (NdpNeighborFlags)(_buffer[Field.Flags] & 0xE0);
        set => _buffer[Field.Flags] = (byte)((byte)value & 0xE0);
    }

    /// <summary>R flag.</summary>
    public bool IsRouter => (Flags & NdpNeighborFlags.Router) != 0;

    /// <summary>S flag.</summary>
    public bool IsSolicited => (Flags & NdpNeighborFlags.Solicited) != 0;

    /// <summary>O flag.</summary>
    public bool IsOverride => (Flags & NdpNeighborFlags.Override) != 0;

    /// <summary>The address being advertised.</summary>
    public Ipv6Address TargetAddress
    {
        get => Ipv6Address.ReadFrom(_buffer.Slice(Field.Target, Field.TargetSize));
        set => value.CopyTo(_buffer.Slice(Field.Target, Field.TargetSize));
    }

    /// <summary>The options after the target address.</summary>
    public Span<byte> Options => _buffer[MinLength..];

    /// <summary>The target link-layer address option.</summary>
    public bool TryGetTargetLinkLayerAddress(out MacAddress address) =>
        NdpOptionReader.TryFindLinkLayerAddress(Options, NdpOptionType.TargetLinkLayerAddress, out address);

    private static class Field
    {
        public const int Flags = 4;
        public const int Target = 8;
        public const int TargetSize = 16;
    }
}
