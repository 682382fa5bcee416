using System.Buffers.Binary;
using System.Text;

namespace Beemesh.State.Eventual;

/// <summary>
/// The bodies of the frames replicas of an eventual store exchange; all integers little-endian,
/// strings UTF-8 with a 16-bit length.
/// <code>
/// Digest   u16 buckets (= DigestBuckets.Count), then u64 per bucket
/// Summary  u16 n, n x u16 bucket; u32 m, m x (string key, i64 ticks, u64 replica)
/// Entries  u32 n, n x (string key, i64 ticks, u64 replica, i64 expires-ms, u8 flags
///          [bit 0: tombstone; else u32 length, value bytes]); u32 m, m x string wanted key
/// </code>
/// Decoding checks every length against the bytes left and the caller's limits before it reads,
/// refuses trailing bytes, negative ticks, unknown flags, bucket numbers out of range and invalid
/// UTF-8, and says why in one line.
/// </summary>
public static class EventualWire
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Encodes a <see cref="EventualFrameKind.Digest"/> body.</summary>
    public static byte[] EncodeDigest(ReadOnlySpan<ulong> digest)
    {
        byte[] body = new byte[2 + (8 * digest.Length)];
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)digest.Length);
        for (int i = 0; i < digest.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(2 + (8 * i)), digest[i]);
        }

        return body;
    }

    /// <summary>Decodes a <see cref="EventualFrameKind.Digest"/> body; false with <paramref name="error"/> when malformed.</summary>
    public static bool TryDecodeDigest(ReadOnlySpan<byte> body, out ulong[] digest, out string? error)
    {
        digest = [];
        var reader = new Reader(body);
        if (!reader.U16(out ushort count) || count != DigestBuckets.Count)
        {
            error = $"a digest must have {DigestBuckets.Count} buckets";
            return false;
        }

        var values = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            if (!reader.U64(out values[i]))
            {
                error = "the digest is cut short";
                return false;
            }
        }

        if (!reader.AtEnd(out error))
        {
            return false;
        }

        digest = values;
        return true;
    }

    /// <summary>Encodes a <see cref="EventualFrameKind.Summary"/> body.</summary>
    public static byte[] EncodeSummary(BucketSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        var writer = new Writer();
        writer.U16(checked((ushort)summary.Buckets.Count));
        foreach (int bucket in summary.Buckets)
        {
            writer.U16(checked((ushort)bucket));
        }

        writer.U32((uint)summary.Stamps.Count);
        foreach (EntryStamp stamp in summary.Stamps)
        {
            writer.Text(stamp.Key);
            writer.U64((ulong)stamp.Stamp.Ticks);
            writer.U64(stamp.Stamp.Replica);
        }

        return writer.ToArray();
    }

    /// <summary>Decodes a <see cref="EventualFrameKind.Summary"/> body of at most <paramref name="maxStamps"/> stamps.</summary>
    public static bool TryDecodeSummary(ReadOnlySpan<byte> body, int maxStamps, out BucketSummary summary, out string? error)
    {
        summary = new BucketSummary([], []);
        var reader = new Reader(body);
        if (!reader.U16(out ushort bucketCount) || bucketCount > DigestBuckets.Count)
        {
            error = "bad bucket count in a summary";
            return false;
        }

        var buckets = new List<int>(bucketCount);
        for (int i = 0; i < bucketCount; i++)
        {
            if (!reader.U16(out ushort bucket) || bucket >= DigestBuckets.Count)
            {
                error = "bad bucket number in a summary";
                return false;
            }

            buckets.Add(bucket);
        }

        if (!reader.Count(maxStamps, 18, out int count, out error))
        {
            return false;
        }

        var stamps = new List<EntryStamp>(count);
        for (int i = 0; i < count; i++)
        {
            if (!reader.Text(out string? key, out error) || !reader.Stamp(out HybridTimestamp stamp, out error))
            {
                return false;
            }

            stamps.Add(new EntryStamp(key!, stamp));
        }

        if (!reader.AtEnd(out error))
        {
            return false;
        }

        summary = new BucketSummary(buckets, stamps);
        return true;
    }

    /// <summary>Encodes an <see cref="EventualFrameKind.Entries"/> body.</summary>
    public static byte[] EncodeEntries(IReadOnlyList<StateEntry> entries, IReadOnlyList<string> want)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(want);
        var writer = new Writer();
        writer.U32((uint)entries.Count);
        foreach (StateEntry entry in entries)
        {
            writer.Text(entry.Key);
            writer.U64((ulong)entry.Stamp.Ticks);
            writer.U64(entry.Stamp.Replica);
            writer.U64((ulong)entry.ExpiresAtMilliseconds);
            if (entry.Value is null)
            {
                writer.Byte(1);
            }
            else
            {
                writer.Byte(0);
                writer.U32((uint)entry.Value.Length);
                writer.Bytes(entry.Value);
            }
        }

        writer.U32((uint)want.Count);
        foreach (string key in want)
        {
            writer.Text(key);
        }

        return writer.ToArray();
    }

    /// <summary>
    /// Decodes an <see cref="EventualFrameKind.Entries"/> body of at most <paramref name="maxEntries"/>
    /// entries and as many wanted keys.
    /// </summary>
    public static bool TryDecodeEntries(ReadOnlySpan<byte> body, int maxEntries, out List<StateEntry> entries, out List<string> want, out string? error)
    {
        entries = [];
        want = [];
        var reader = new Reader(body);
        if (!reader.Count(maxEntries, 27, out int count, out error))
        {
            return false;
        }

        var decoded = new List<StateEntry>(count);
        for (int i = 0; i < count; i++)
        {
            if (!reader.Text(out string? key, out error) || !reader.Stamp(out HybridTimestamp stamp, out error))
            {
                return false;
            }

            if (!reader.U64(out ulong expires) || (long)expires < 0 || !reader.Byte(out byte flags))
            {
                error = "an entry is cut short or expires before 1970";
                return false;
            }

            byte[]? value = null;
            if (flags == 0)
            {
                if (!reader.U32(out uint length) || !reader.Bytes(length, out value))
                {
                    error = "an entry's value is cut short";
                    return false;
                }
            }
            else if (flags != 1)
            {
                error = $"unknown entry flags {flags}";
                return false;
            }

            decoded.Add(new StateEntry(key!, value, stamp, (long)expires));
        }

        if (!reader.Count(maxEntries, 2, out int wanted, out error))
        {
            return false;
        }

        var keys = new List<string>(wanted);
        for (int i = 0; i < wanted; i++)
        {
            if (!reader.Text(out string? key, out error))
            {
                return false;
            }

            keys.Add(key!);
        }

        if (!reader.AtEnd(out error))
        {
            return false;
        }

        entries = decoded;
        want = keys;
        return true;
    }

    private sealed class Writer
    {
        private readonly MemoryStream _stream = new();

        public void Byte(byte value) => _stream.WriteByte(value);

        public void U16(ushort value)
        {
            Span<byte> b = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(b, value);
            _stream.Write(b);
        }

        public void U32(uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            _stream.Write(b);
        }

        public void U64(ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, value);
            _stream.Write(b);
        }

        public void Bytes(ReadOnlySpan<byte> value) => _stream.Write(value);

        public void Text(string value)
        {
            byte[] utf8 = Strict.GetBytes(value);
            U16(checked((ushort)utf8.Length));
            Bytes(utf8);
        }

        public byte[] ToArray() => _stream.ToArray();
    }

    /// <summary>A cursor over a body: every read checks the bytes left first.</summary>
    private ref struct Reader(ReadOnlySpan<byte> body)
    {
        private ReadOnlySpan<byte> _rest = body;

        public bool Byte(out byte value)
        {
            value = 0;
            if (_rest.Length < 1)
            {
                return false;
            }

            value = _rest[0];
            _rest = _rest[1..];
            return true;
        }

        public bool U16(out ushort value)
        {
            value = 0;
            if (_rest.Length < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
            _rest = _rest[2..];
            return true;
        }

        public bool U32(out uint value)
        {
            value = 0;
            if (_rest.Length < 4)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt32LittleEndian(_rest);
            _rest = _rest[4..];
            return true;
        }

        public bool U64(out ulong value)
        {
            value = 0;
            if (_rest.Length < 8)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt64LittleEndian(_rest);
            _rest = _rest[8..];
            return true;
        }

        public bool Bytes(uint length, out byte[]? value)
        {
            value = null;
            if ((ulong)_rest.Length < length)
            {
                return false;
            }

            value = _rest[..(int)length].ToArray();
            _rest = _rest[(int)length..];
            return true;
        }

        /// <summary>A u32 count, at most <paramref name="max"/> and no more than the bytes left allow at <paramref name="minItemBytes"/> each.</summary>
        public bool Count(int max, int minItemBytes, out int count, out string? error)
        {
            count = 0;
            if (!U32(out uint raw))
            {
                error = "a count is cut short";
                return false;
            }

            if (raw > (uint)max)
            {
                error = $"{raw} items in one frame (limit {max})";
                return false;
            }

            if ((ulong)raw * (ulong)minItemBytes > (ulong)_rest.Length)
            {
                error = $"{raw} items cannot fit in the {_rest.Length} bytes left";
                return false;
            }

            count = (int)raw;
            error = null;
            return true;
        }

        public bool Text(out string? value, out string? error)
        {
            value = null;
            if (!U16(out ushort length) || _rest.Length < length)
            {
                error = "a key is cut short";
                return false;
            }

            try
            {
                value = Strict.GetString(_rest[..length]);
            }
            catch (DecoderFallbackException)
            {
                error = "a key is not valid UTF-8";
                return false;
            }

            _rest = _rest[length..];
            error = null;
            return true;
        }

        public bool Stamp(out HybridTimestamp stamp, out string? error)
        {
            stamp = default;
            if (!U64(out ulong ticks) || !U64(out ulong replica))
            {
                error = "a stamp is cut short";
                return false;
            }

            if ((long)ticks < 0)
            {
                error = "a stamp has negative ticks";
                return false;
            }

            stamp = new HybridTimestamp((long)ticks, replica);
            error = null;
            return true;
        }

        public readonly bool AtEnd(out string? error)
        {
            error = _rest.IsEmpty ? null : $"{_rest.Length} bytes after the end of the message";
            return _rest.IsEmpty;
        }
    }
}
