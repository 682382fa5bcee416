using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Beemesh.Netstack.Wire;

/// <summary>An IPv4 address held as a host-order <see cref="uint"/> (10.0.2.2 is 0x0A000202), allocation free.</summary>
public readonly struct Ipv4Address : IEquatable<Ipv4Address>, IComparable<Ipv4Address>
{
    /// <summary>Size of an IPv4 address on the wire.</summary>
    public const int Length = 4;

    /// <summary>Creates an address from its host-order numeric value.</summary>
    public Ipv4Address(uint value) => Value = value;

    /// <summary>Creates an address from its four octets, most significant first (a.b.c.d).</summary>
    public Ipv4Address(byte a, byte b, byte c, byte d) => Value = ((uint)a << 24) | ((uint)b << 16) | ((uint)c << 8) | d;

    /// <summary>The address as a host-order number.</summary>
    public uint Value { get; }

    /// <summary>0.0.0.0.</summary>
    public static Ipv4Address Any => default;

    /// <summary>255.255.255.255, the limited broadcast address.</summary>
    public static Ipv4Address Broadcast => new(0xFFFF_FFFFu);

    /// <summary>127.0.0.1.</summary>
    public static Ipv4Address Loopback => new(0x7F00_0001u);

    /// <summary>True for 0.0.0.0.</summary>
    public bool IsUnspecified => Value == 0;

    /// <summary>True for 127.0.0.0/8 (RFC 1122 §3.2.1.3).</summary>
    public bool IsLoopback => (Value >> 24) == 127;

    /// <summary>True for the limited broadcast 255.255.255.255 only (subnet broadcasts depend on the prefix).</summary>
    public bool IsBroadcast => Value == 0xFFFF_FFFFu;

    /// <summary>True for 224.0.0.0/4 (RFC 5771).</summary>
    public bool IsMulticast => (Value >> 28) == 0xE;

    /// <summary>True for 169.254.0.0/16 (RFC 3927).</summary>
    public bool IsLinkLocal => (Value >> 16) == 0xA9FE;

    /// <summary>Reads four octets in network order from <paramref name="source"/>.</summary>
    public static Ipv4Address ReadFrom(ReadOnlySpan<byte> source) => new(BinaryPrimitives.ReadUInt32BigEndian(source));

    /// <summary>Writes the four octets in network order.</summary>
    public void CopyTo(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, Value);

    /// <summary>Converts from <see cref="IPAddress"/>; IPv4-mapped IPv6 addresses are unwrapped.</summary>
    /// <exception cref="ArgumentException">The address is IPv6 and not IPv4-mapped.</exception>
    public static Ipv4Address From(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("not an IPv4 address", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return ReadFrom(bytes);
    }

    /// <summary>Converts to <see cref="IPAddress"/> (allocates; not for the hot path).</summary>
    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[4];
        CopyTo(bytes);
        return new IPAddress(bytes);
    }

    /// <summary>Parses dotted-quad text ("10.0.2.2").</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Ipv4Address address)
    {
        address = default;
        uint value = 0;
        int parts = 0;
        int i = 0;
        while (parts < 4)
        {
            int start = i;
            uint part = 0;
            while (i < text.Length && char.IsAsciiDigit(text[i]) && i - start < 3)
            {
                part = (part * 10) + (uint)(text[i] - '0');
                i++;
            }

            if (i == start || part > 255 || (i - start > 1 && text[start] == '0'))
            {
                return false;
            }

            value = (value << 8) | part;
            parts++;
            if (parts < 4)
            {
                if (i >= text.Length || text[i] != '.')
                {
                    return false;
                }

                i++;
            }
        }

        if (i != text.Length)
        {
            return false;
        }

        address = new Ipv4Address(value);
        return true;
    }

    /// <summary>Parses dotted-quad text, throwing <see cref="FormatException"/> on bad input.</summary>
    public static Ipv4Address Parse(string text) =>
        TryParse(text, out Ipv4Address address) ? address : throw new FormatException($"invalid IPv4 address '{text}'");

    /// <summary>Dotted-quad form.</summary>
    public override string ToString() => $"{Value >> 24}.{(Value >> 16) & 0xFF}.{(Value >> 8) & 0xFF}.{Value & 0xFF}";

    /// <inheritdoc/>
    public bool Equals(Ipv4Address other) => Value == other.Value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Ipv4Address other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => (int)Value;

    /// <inheritdoc/>
    public int CompareTo(Ipv4Address other) => Value.CompareTo(other.Value);

    /// <summary>Same address.</summary>
    public static bool operator ==(Ipv4Address left, Ipv4Address right) => left.Value == right.Value;

    /// <summary>Different address.</summary>
    public static bool operator !=(Ipv4Address left, Ipv4Address right) => left.Value != right.Value;
}
