using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit big-endian words.
/// </summary>
/// <remarks>
/// Partial sums returned by <see cref="Sum"/> and the pseudo-header helpers are already folded to 16 bits (no final
/// NOT) so they chain: <c>Fold(Sum(payload, Sum(header, PseudoHeaderV4(...))))</c>. Every chunk except the last
/// must have an even length, because an odd trailing byte is padded with zero (RFC 1071 §1).
/// The sum is byte-order independent (RFC 1071 §2(B)), so the vector loop adds native little-endian lanes into
/// wide accumulators and swaps the two bytes of the folded result once at the end.
/// </remarks>
public static class InternetChecksum
{
    /// <summary>Adds <paramref name="data"/> (as big-endian 16-bit words) to the partial sum <paramref name="initial"/>.</summary>
    /// <returns>The partial sum folded to 16 bits, not complemented.</returns>
    public static uint Sum(ReadOnlySpan<byte> data, uint initial = 0)
    {
        ulong accumulator = 0;
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int offset = 0;

        if (Vector256.IsHardwareAccelerated && length >= 64)
        {
            Vector256<ulong> acc0 = Vector256<ulong>.Zero;
            Vector256<ulong> acc1 = Vector256<ulong>.Zero;
            for (; offset + 32 <= length; offset += 32)
            {
                Vector256<uint> words = Vector256.LoadUnsafe(ref Unsafe.Add(ref start, offset)).AsUInt32();
                (Vector256<ulong> lower, Vector256<ulong> upper) = Vector256.Widen(words);
                acc0 += lower;
                acc1 += upper;
            }

            accumulator = AddCarry(accumulator, Vector256.Sum(acc0));
            accumulator = AddCarry(accumulator, Vector256.Sum(acc1));
        }
        else if (Vector128.IsHardwareAccelerated && length >= 32)
        {
            Vector128<ulong> acc0 = Vector128<ulong>.Zero;
            Vector128<ulong> acc1 = Vector128<ulong>.Zero;
            for (; offset + 16 <= length; offset += 16)
            {
                Vector128<uint> words = Vector128.LoadUnsafe(ref Unsafe.Add(ref start, offset)).AsUInt32();
                (Vector128<ulong> lower, Vector128<ulong> upper) = Vector128.Widen(words);
                acc0 += lower;
                acc1 += upper;
            }

            accumulator = AddCarry(accumulator, Vector128.Sum(acc0));
            accumulator = AddCarry(accumulator, Vector128.Sum(acc1));
        }

        accumulator = AddCarry(accumulator, SumNativeTail(data[offset..]));
        uint folded = FoldTo16(accumulator);

        // Native (little-endian) lanes summed; swap once to get the big-endian sum.
        if (BitConverter.IsLittleEndian)
        {
            folded = BinaryPrimitives.ReverseEndianness((ushort)folded);
        }

        return FoldTo16((ulong)folded + initial);
    }

    /// <summary>A plain word-by-word big-endian reference implementation, kept for testing the vector path.</summary>
    internal static uint SumScalar(ReadOnlySpan<byte> data, uint initial = 0)
    {
        ulong sum = initial;
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += (uint)((data[i] << 8) | data[i + 1]);
        }

        if (i < data.Length)
        {
            sum += (uint)(data[i] << 8);
        }

        return FoldTo16(sum);
    }

    /// <summary>Folds carries into 16 bits and complements: the value to put into a checksum field.</summary>
    public static ushort Fold(uint sum) => (ushort)~FoldTo16(sum);

    /// <summary>The checksum of <paramref name="data"/> alone: <c>Fold(Sum(data))</c>.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Fold(Sum(data));

    /// <summary>Partial sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768): addresses, zero, protocol, length.</summary>
    public static uint PseudoHeaderV4(Ipv4Address source, Ipv4Address destination, IpProtocol protocol, int length)
    {
        ulong sum = (source.Value >> 16) + (source.Value & 0xFFFF)
            + (destination.Value >> 16) + (destination.Value & 0xFFFF)
            + (uint)(byte)protocol + (uint)(ushort)length;
        return FoldTo16(sum);
    }

    /// <summary>Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, 32-bit length, next header.</summary>
    public static uint PseudoHeaderV6(Ipv6Address source, Ipv6Address destination, IpProtocol protocol, int length)
    {
        ulong sum = SumWords(source.High) + SumWords(source.Low) + SumWords(destination.High) + SumWords(destination.Low)
            + ((uint)length >> 16) + ((uint)length & 0xFFFF) + (uint)(byte)protocol;
        return FoldTo16(sum);
    }

    private static ulong SumWords(ulong value) =>
        (value >> 48) + ((value >> 32) & 0xFFFF) + ((value >> 16) & 0xFFFF) + (value & 0xFFFF);

    // Sums the remainder in native byte order: 4-byte words, then a 2-byte word, then an odd byte. On a
    // little-endian machine the odd byte is the low half of its native word, which becomes the high
    // (zero-padded, RFC 1071) half once the total is byte-swapped.
    private static ulong SumNativeTail(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        int i = 0;
        for (; i + 4 <= data.Length; i += 4)
        {
            sum += MemoryMarshal.Read<uint>(data[i..]);
        }

        if (i + 2 <= data.Length)
        {
            sum += MemoryMarshal.Read<ushort>(data[i..]);
            i += 2;
        }

        if (i < data.Length)
        {
            sum += BitConverter.IsLittleEndian ? data[i] : (uint)(data[i] << 8);
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddCarry(ulong a, ulong b)
    {
        ulong sum = a + b;
        return sum < a ? sum + 1 : sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint FoldTo16(ulong sum)
    {
        sum = (sum & 0xFFFF_FFFFUL) + (sum >> 32);
        sum = (sum & 0xFFFF_FFFFUL) + (sum >> 32);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (uint)sum;
    }
}
