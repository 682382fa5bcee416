using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// Flow tables key addresses as <see cref="UInt128"/>: IPv6 as is, IPv4 as the IPv4-mapped
/// IPv6 address (::ffff:a.b.c.d), so one code path serves both families. Also writes and
/// reads the kernel's sockaddr_in / sockaddr_in6 for these values.
/// </summary>
internal static class IpAddr
{
    private static readonly UInt128 V4Prefix = (UInt128)0xFFFF << 32;

    /// <summary>Size of a buffer that holds either sockaddr.</summary>
    public const int SockAddrSize = 28;

    public static UInt128 FromV4(uint hostOrder) => V4Prefix | hostOrder;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static bool IsV4(UInt128 a) => (ulong)(a >> 64) == 0 && ((ulong)a >> 32) == 0xFFFF;

    public static uint ToV4(UInt128 a) => (uint)(a & uint.MaxValue);

    /// <summary>The IPv4 address of an IPv4-mapped value.</summary>
    public static Ipv4Address ToIpv4Address(UInt128 a) => new(ToV4(a));

    /// <summary>The value as a 16-byte IPv6 address.</summary>
    public static Ipv6Address ToIpv6Address(UInt128 a) => new((ulong)(a >> 64), (ulong)a);

    /// <summary>The flow-table value of an IPv4 address.</summary>
    public static UInt128 From(Ipv4Address a) => FromV4(a.Value);

    /// <summary>The flow-table value of an IPv6 address.</summary>
    public static UInt128 From(Ipv6Address a) => ((UInt128)a.High << 64) | a.Low;

    /// <summary>Reads a 4-byte (IPv4) or 16-byte (IPv6) network-order address.</summary>
    public static UInt128 Read(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 4 ? FromV4(BinaryPrimitives.ReadUInt32BigEndian(bytes)) : BinaryPrimitives.ReadUInt128BigEndian(bytes);

    /// <summary>Writes the address in network order: 4 bytes for IPv4-mapped values, else 16.</summary>
    public static int Write(UInt128 a, Span<byte> destination)
    {
        if (IsV4(a))
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, ToV4(a));
            return 4;
        }

        BinaryPrimitives.WriteUInt128BigEndian(destination, a);
        return 16;
    }

    public static UInt128 From(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(b, out _);
            return Read(b[..4]);
        }

        address.TryWriteBytes(b, out _);
        var v = BinaryPrimitives.ReadUInt128BigEndian(b);
        return v;
    }

    public static IPAddress ToIPAddress(UInt128 a)
    {
        Span<byte> b = stackalloc byte[16];
        int n = Write(a, b);
        return new IPAddress(b[..n]);
    }

    public static bool IsLoopback(UInt128 a) => IsV4(a) ? (ToV4(a) >> 24) == 127 : a == UInt128.One;

    public static readonly UInt128 V4Loopback = FromV4(0x7F000001);

    /// <summary>
    /// Writes a sockaddr for (address, port); returns its length. IPv4-mapped values become
    /// sockaddr_in unless <paramref name="ipv6"/> asks for sockaddr_in6 (an AF_INET6 socket).
    /// </summary>
    public static int WriteSockAddr(UInt128 a, ushort port, Span<byte> sa, bool ipv6 = false)
    {
        sa.Clear();
        if (IsV4(a) && !ipv6)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(sa, Sys.AF_INET);
            BinaryPrimitives.WriteUInt16BigEndian(sa[2..], port);
            BinaryPrimitives.WriteUInt32BigEndian(sa[4..], ToV4(a));
            return 16;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(sa, Sys.AF_INET6);
        BinaryPrimitives.WriteUInt16BigEndian(sa[2..], port);
        BinaryPrimitives.WriteUInt128BigEndian(sa[8..], a);
        return 28;
    }

    /// <summary>Reads a sockaddr_in/in6; an IPv4-mapped IPv6 address comes back as IPv4-mapped, i.e. IPv4.</summary>
    public static bool ReadSockAddr(ReadOnlySpan<byte> sa, out UInt128 address, out ushort port)
    {
        address = default;
        port = 0;
        if (sa.Length < 16)
        {
            return false;
        }

        int family = BinaryPrimitives.ReadUInt16LittleEndian(sa);
        port = BinaryPrimitives.ReadUInt16BigEndian(sa[2..]);
        if (family == Sys.AF_INET)
        {
            address = FromV4(BinaryPrimitives.ReadUInt32BigEndian(sa[4..]));
            return true;
        }

        if (family == Sys.AF_INET6 && sa.Length >= 24)
        {
            address = BinaryPrimitives.ReadUInt128BigEndian(sa[8..]);
            return true;
        }

        return false;
    }

    public static string Format(UInt128 a) => ToIPAddress(a).ToString();
}
