using System.Buffers.Binary;
using System.Text;
using Beemesh.State.Api;

namespace Beemesh.State.Strong;

/// <summary>
/// One entry of a strong store's replicated log: the writes of one Dapr call (a save, a delete or a
/// whole transaction) and the leader's clock when it proposed them, which every replica uses for
/// TTLs so that all of them compute the same expiry.
/// </summary>
/// <param name="StampMilliseconds">Unix time in milliseconds at the proposing replica.</param>
/// <param name="Operations">The writes, applied all or none.</param>
public sealed record StrongCommand(long StampMilliseconds, IReadOnlyList<StateOperation> Operations)
{
    /// <summary>The format's first byte; a log written by another format is refused, not misread.</summary>
    public const byte FormatVersion = 1;

    /// <summary>
    /// Encodes the command: version, stamp, count, then per operation a flags byte (value present,
    /// ETag present, TTL present, concurrency in bits 3-4), the key, the value, the ETag and the TTL
    /// in milliseconds. Strings are UTF-8 with a 32-bit length.
    /// </summary>
    public byte[] Encode()
    {
        using var buffer = new MemoryStream();
        Span<byte> scratch = stackalloc byte[8];
        buffer.WriteByte(FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(scratch, StampMilliseconds);
        buffer.Write(scratch[..8]);
        BinaryPrimitives.WriteInt32LittleEndian(scratch, Operations.Count);
        buffer.Write(scratch[..4]);
        foreach (StateOperation op in Operations)
        {
            byte flags = (byte)((op.Value is not null ? 1 : 0) | (op.ETag is not null ? 2 : 0) | (op.TimeToLive is not null ? 4 : 0) | ((int)op.Concurrency << 3));
            buffer.WriteByte(flags);
            WriteBytes(buffer, Encoding.UTF8.GetBytes(op.Key));
            if (op.Value is not null)
            {
                WriteBytes(buffer, op.Value);
            }

            if (op.ETag is not null)
            {
                WriteBytes(buffer, Encoding.UTF8.GetBytes(op.ETag));
            }

            if (op.TimeToLive is TimeSpan ttl)
            {
                BinaryPrimitives.WriteInt64LittleEndian(scratch, (long)ttl.TotalMilliseconds);
                buffer.Write(scratch[..8]);
            }
        }

        return buffer.ToArray();
    }

    /// <summary>Decodes what <see cref="Encode"/> wrote; throws <see cref="FormatException"/> on anything else.</summary>
    public static StrongCommand Decode(ReadOnlySpan<byte> data)
    {
        var reader = new SpanReader(data);
        if (reader.Byte() != FormatVersion)
        {
            throw new FormatException("unknown strong state command format");
        }

        long stamp = reader.Int64();
        int count = reader.Int32();
        if (count < 0 || count > data.Length)
        {
            throw new FormatException("bad operation count");
        }

        var operations = new List<StateOperation>(count);
        for (int i = 0; i < count; i++)
        {
            byte flags = reader.Byte();
            if ((flags >> 5) != 0 || ((flags >> 3) & 3) > (int)StateConcurrency.LastWrite)
            {
                throw new FormatException("bad operation flags");
            }

            string key = Encoding.UTF8.GetString(reader.Bytes());
            byte[]? value = (flags & 1) != 0 ? reader.Bytes().ToArray() : null;
            string? etag = (flags & 2) != 0 ? Encoding.UTF8.GetString(reader.Bytes()) : null;
            TimeSpan? ttl = (flags & 4) != 0 ? TimeSpan.FromMilliseconds(reader.Int64()) : null;
            operations.Add(new StateOperation(key, value, etag, (StateConcurrency)((flags >> 3) & 3), ttl));
        }

        if (!reader.AtEnd)
        {
            throw new FormatException("trailing bytes after the last operation");
        }

        return new StrongCommand(stamp, operations);
    }

    private static void WriteBytes(MemoryStream buffer, ReadOnlySpan<byte> bytes)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        buffer.Write(length);
        buffer.Write(bytes);
    }
}
