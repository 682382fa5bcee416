using System.Buffers.Binary;
using System.Globalization;

namespace Beemesh.Netstack.Wire;

/// <summary>A 48-bit IEEE 802 MAC address, stored inline (no heap) so it can sit in hot-path structs.</summary>
public readonly struct MacAddress : IEquatable<MacAddress>
{
    /// <summary>Size of a MAC address on the wire.</summary>
    public const int Length = 6;

    // The six octets in wire order, packed into the low 48 bits (first octet most significant).
    private readonly ulong _value;

    private MacAddress(ulong value) => _value = value & 0xFFFF_FFFF_FFFFUL;

    /// <summary>Builds an address from its six octets in wire order.</summary>
    public MacAddress(byte a, byte b, byte c, byte d, byte e, byte f)
        : this(((ulong)a << 40) | ((ulong)b << 32) | ((ulong)c << 24) | ((ulong)d << 16) | ((ulong)e << 8) | f)
    {
    }

    /// <summary>The address whose six octets are the low 48 bits of <paramref name="value"/> (first octet most significant).</summary>
    public static MacAddress FromUInt64(ulong value) => new(value);

    /// <summary>The six octets packed into the low 48 bits (first octet most significant).</summary>
    public ulong ToUInt64() => _value;

    /// <summary>ff:ff:ff:ff:ff:ff.</summary>
    public static MacAddress Broadcast => new(0xFFFF_FFFF_FFFFUL);

    /// <summary>00:00:00:00:00:00.</summary>
    public static MacAddress Zero => default;

    /// <summary>True for ff:ff:ff:ff:ff:ff.</summary>
    public bool IsBroadcast => _value == 0xFFFF_FFFF_FFFFUL;

    /// <summary>True when the I/G bit (least significant bit of the first octet) is set; includes broadcast.</summary>
    public bool IsMulticast => ((_value >> 40) & 1) != 0;

    /// <summary>True for a unicast address (I/G bit clear).</summary>
    public bool IsUnicast => !IsMulticast;

    /// <summary>Reads six octets from <paramref name="source"/> (which must hold at least six bytes).</summary>
    public static MacAddress ReadFrom(ReadOnlySpan<byte> source)
    {
        uint high = BinaryPrimitives.ReadUInt32BigEndian(source);
        ushort low = BinaryPrimitives.ReadUInt16BigEndian(source[4..]);
        return new MacAddress(((ulong)high << 16) | low);
    }

    /// <summary>Writes the six octets in wire order to <paramref name="destination"/>.</summary>
    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)_value);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)(_value >> 16));
    }

    /// <summary>The IPv6 multicast MAC for <paramref name="group"/>: 33:33 followed by its low 32 bits (RFC 2464 §7).</summary>
    public static MacAddress FromIpv6Multicast(Ipv6Address group) => new(0x3333_0000_0000UL | (uint)group.Low);

    /// <summary>Parses the colon (or dash) separated hex form, e.g. "aa:bb:cc:dd:ee:ff".</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out MacAddress address)
    {
        address = default;
        if (text.Length != 17)
        {
            return false;
        }

        ulong value = 0;
        for (int i = 0; i < 6; i++)
        {
            int at = i * 3;
            if (i > 0 && text[at - 1] != ':' && text[at - 1] != '-')
            {
                return false;
            }

            if (!byte.TryParse(text.Slice(at, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte octet))
            {
                return false;
            }

            value = (value << 8) | octet;
        }

        address = new MacAddress(value);
        return true;
    }

    /// <summary>Parses like <see cref="TryParse"/> but throws <see cref="FormatException"/> on bad input.</summary>
    public static MacAddress Parse(string text) =>
        TryParse(text, out MacAddress address) ? address : throw new FormatException($"invalid MAC address '{text}'");

    /// <summary>Lowercase colon form, e.g. "52:55:0a:00:02:02".</summary>
    public override string ToString() => string.Create(17, _value, static (chars, value) =>
    {
        const string Hex = "0123456789abcdef";
        for (int i = 0; i < 6; i++)
        {
            int octet = (int)(value >> (40 - (8 * i))) & 0xFF;
            int at = i * 3;
            chars[at] = Hex[octet >> 4];
            chars[at + 1] = Hex[octet & 0xF];
            if (i < 5)
            {
                chars[at + 2] = ':';
            }
        }
    });

    /// <inheritdoc/>
    public bool Equals(MacAddress other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is MacAddress other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>Equality of all six octets.</summary>
    public static bool operator ==(MacAddress left, MacAddress right) => left.Equals(right);

    /// <summary>Inequality of any octet.</summary>
    public static bool operator !=(MacAddress left, MacAddress right) => !left.Equals(right);
}
