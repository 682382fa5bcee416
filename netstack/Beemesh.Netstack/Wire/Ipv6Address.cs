using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// An IPv6 address held as two host-order <see cref="ulong"/> halves (<see cref="High"/> is the first
/// eight octets on the wire), so comparisons and hashing are two word operations and nothing allocates.
/// </summary>
public readonly struct Ipv6Address : IEquatable<Ipv6Address>
{
    /// <summary>Size of an IPv6 address on the wire.</summary>
    public const int Length = 16;

    /// <summary>Creates an address from its two halves (first eight octets, last eight octets).</summary>
    public Ipv6Address(ulong high, ulong low)
    {
        High = high;
        Low = low;
    }

    /// <summary>The first eight octets, read big-endian.</summary>
    public ulong High { get; }

    /// <summary>The last eight octets, read big-endian.</summary>
    public ulong Low { get; }

    /// <summary>::.</summary>
    public static Ipv6Address Unspecified => default;

    /// <summary>::1.</summary>
    public static Ipv6Address Loopback => new(0, 1);

    /// <summary>ff02::1, all nodes on the link (RFC 4291 §2.7.1).</summary>
    public static Ipv6Address AllNodes => new(0xFF02_0000_0000_0000UL, 1);

    /// <summary>ff02::2, all routers on the link (RFC 4291 §2.7.1).</summary>
    public static Ipv6Address AllRouters => new(0xFF02_0000_0000_0000UL, 2);

    /// <summary>True for ::.</summary>
    public bool IsUnspecified => High == 0 && Low == 0;

    /// <summary>True for ::1.</summary>
    public bool IsLoopback => High == 0 && Low == 1;

    /// <summary>True for ff00::/8.</summary>
    public bool IsMulticast => (High >> 56) == 0xFF;

    /// <summary>True for fe80::/10 (RFC 4291 §2.5.6).</summary>
    public bool IsLinkLocal => (High >> 54) == (0xFE80UL >> 6);

    /// <summary>True for ::ffff:0:0/96 (RFC 4291 §2.5.5.2).</summary>
    public bool IsIpv4Mapped => High == 0 && (Low >> 32) == 0xFFFF;

    /// <summary>The solicited-node multicast group ff02::1:ffXX:XXXX for this address (RFC 4291 §2.7.1).</summary>
    public Ipv6Address SolicitedNodeMulticast() => new(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (Low & 0x00FF_FFFFUL));

    /// <summary>Reads sixteen octets in network order.</summary>
    public static Ipv6Address ReadFrom(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt64BigEndian(source[8..]));

    /// <summary>Writes the sixteen octets in network order.</summary>
    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Low);
        BinaryPrimitives.WriteUInt64BigEndian(destination, High);
    }

    /// <summary>Converts from <see cref="IPAddress"/>.</summary>
    /// <exception cref="ArgumentException">The address is not IPv6.</exception>
    public static Ipv6Address From(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            throw new ArgumentException("not an IPv6 address", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return ReadFrom(bytes);
    }

    /// <summary>Converts to <see cref="IPAddress"/> (allocates; not for the hot path).</summary>
    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        CopyTo(bytes);
        return new IPAddress(bytes);
    }

    /// <summary>Parses RFC 4291 text ("fd00::2"); rejects IPv4 text and scope ids.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Ipv6Address address)
    {
        address = default;
        if (text.IndexOf('%') >= 0 || text.IndexOf(':') < 0 || !IPAddress.TryParse(text, out IPAddress? parsed)
            || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        address = From(parsed);
        return true;
    }

    /// <summary>Parses RFC 4291 text, throwing <see cref="FormatException"/> on bad input.</summary>
    public static Ipv6Address Parse(string text) =>
        TryParse(text, out Ipv6Address address) ? address : throw new FormatException($"invalid IPv6 address '{text}'");

    /// <summary>RFC 5952 text form.</summary>
    public override string ToString() => ToIPAddress().ToString();

    /// <inheritdoc/>
    public bool Equals(Ipv6Address other) => High == other.High && Low == other.Low;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Ipv6Address other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(High, Low);

    /// <summary>Same address.</summary>
    public static bool operator ==(Ipv6Address left, Ipv6Address right) => left.Equals(right);

    /// <summary>Different address.</summary>
    public static bool operator !=(Ipv6Address left, Ipv6Address right) => !left.Equals(right);
}
