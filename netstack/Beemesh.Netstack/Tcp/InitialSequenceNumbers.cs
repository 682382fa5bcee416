using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace Beemesh.Netstack.Tcp;

/// <summary>
/// Initial sequence numbers as RFC 6528 §3 asks: ISN = M + F(localip, localport, remoteip,
/// remoteport, secretkey), where M is a timer that ticks every 4 µs and F is SipHash-2-4 keyed
/// with a 128-bit secret drawn once per stack. Within one 4-tuple the ISN grows with the clock
/// (250,000 per second, as RFC 9293 §3.4.1 has it), so a new incarnation of a connection starts
/// above the old one's sequence space; across 4-tuples the values are unrelated, and without the
/// secret an observer cannot predict the ISN of a connection it is not part of.
/// </summary>
/// <remarks>
/// Sans-IO: the caller passes the time (the stack's monotonic clock). Safe from any thread: the
/// key is fixed at construction and nothing else is stored.
/// </remarks>
internal sealed class InitialSequenceNumbers
{
    /// <summary>Length of the secret key in bytes (SipHash's 128-bit key).</summary>
    public const int KeyLength = 16;

    private const long TicksPerIncrement = 40; // 4 µs in TimeSpan ticks of 100 ns

    private readonly ulong _k0;
    private readonly ulong _k1;

    /// <summary>A generator keyed with <paramref name="key"/> (16 bytes).</summary>
    public InitialSequenceNumbers(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyLength)
        {
            throw new ArgumentException($"the ISN key must be {KeyLength} bytes, not {key.Length}", nameof(key));
        }

        _k0 = BinaryPrimitives.ReadUInt64LittleEndian(key);
        _k1 = BinaryPrimitives.ReadUInt64LittleEndian(key[8..]);
    }

    /// <summary>A generator with a fresh secret from the system's cryptographic random source.</summary>
    public static InitialSequenceNumbers CreateRandom()
    {
        Span<byte> key = stackalloc byte[KeyLength];
        RandomNumberGenerator.Fill(key);
        var isn = new InitialSequenceNumbers(key);
        CryptographicOperations.ZeroMemory(key);
        return isn;
    }

    /// <summary>
    /// The ISN for a connection between <paramref name="localAddress"/>:<paramref name="localPort"/>
    /// (the stack's side) and <paramref name="remoteAddress"/>:<paramref name="remotePort"/> at
    /// <paramref name="now"/> (any monotonic clock; only differences matter).
    /// </summary>
    public uint Next(UInt128 localAddress, ushort localPort, UInt128 remoteAddress, ushort remotePort, TimeSpan now)
    {
        uint m = (uint)(ulong)(now.Ticks / TicksPerIncrement);
        return m + (uint)Hash(localAddress, localPort, remoteAddress, remotePort);
    }

    /// <summary>F: SipHash-2-4 of the 36-byte tuple (addresses as 16 bytes each, then the ports, big-endian).</summary>
    internal ulong Hash(UInt128 localAddress, ushort localPort, UInt128 remoteAddress, ushort remotePort)
    {
        Span<byte> tuple = stackalloc byte[36];
        BinaryPrimitives.WriteUInt128BigEndian(tuple, localAddress);
        BinaryPrimitives.WriteUInt128BigEndian(tuple[16..], remoteAddress);
        BinaryPrimitives.WriteUInt16BigEndian(tuple[32..], localPort);
        BinaryPrimitives.WriteUInt16BigEndian(tuple[34..], remotePort);
        return SipHash24(_k0, _k1, tuple);
    }

    /// <summary>SipHash-2-4 (Aumasson and Bernstein, 2012) with a 64-bit output.</summary>
    internal static ulong SipHash24(ulong k0, ulong k1, ReadOnlySpan<byte> message)
    {
        ulong v0 = 0x736f6d6570736575UL ^ k0;
        ulong v1 = 0x646f72616e646f6dUL ^ k1;
        ulong v2 = 0x6c7967656e657261UL ^ k0;
        ulong v3 = 0x7465646279746573UL ^ k1;

        int whole = message.Length & ~7;
        for (int i = 0; i < whole; i += 8)
        {
            ulong m = BinaryPrimitives.ReadUInt64LittleEndian(message[i..]);
            v3 ^= m;
            Round(ref v0, ref v1, ref v2, ref v3);
            Round(ref v0, ref v1, ref v2, ref v3);
            v0 ^= m;
        }

        ulong last = (ulong)message.Length << 56;
        for (int i = 0; i < message.Length - whole; i++)
        {
            last |= (ulong)message[whole + i] << (8 * i);
        }

        v3 ^= last;
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        v0 ^= last;
        v2 ^= 0xff;
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        return v0 ^ v1 ^ v2 ^ v3;
    }

    private static void Round(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
    {
        v0 += v1;
        v1 = BitOperations.RotateLeft(v1, 13);
        v1 ^= v0;
        v0 = BitOperations.RotateLeft(v0, 32);
        v2 += v3;
        v3 = BitOperations.RotateLeft(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = BitOperations.RotateLeft(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = BitOperations.RotateLeft(v1, 17);
        v1 ^= v2;
        v2 = BitOperations.RotateLeft(v2, 32);
    }
}
