using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Beemesh.State.Api;

namespace Beemesh.State.Strong;

/// <summary>
/// The replicated state of one strong store: what every replica computes by applying the committed
/// log in order. Sans-IO and deterministic: the result of <see cref="Apply"/> depends only on the
/// state, the entry's log index and the command (whose stamp stands in for the clock), so every
/// replica holds the same map after the same entries.
/// </summary>
/// <remarks>
/// <para>A key's ETag is the log index of the entry that last wrote it (decimal): it only grows,
/// and two replicas give the same ETag for the same version. A command's writes are checked and
/// applied all or none, in order, each check seeing the writes before it: a transaction is one
/// entry. An ETag check or first-write on an absent key is a compare-and-set against the applied
/// state, decided once, in log order, the same way everywhere.</para>
/// <para>Reads check expiry against the reader's clock; the map drops an expired entry when a
/// later command's stamp passes its expiry, or when a snapshot is taken.</para>
/// <para>Thread-safe: one lock.</para>
/// </remarks>
public sealed class StrongStateMachine
{
    private const byte SnapshotVersion = 1;
    private const int EntryOverhead = 64;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly long _maxBytes;
    private long _bytes;
    private long _lastStamp;

    /// <summary>Creates an empty state that holds at most <paramref name="maxBytes"/> of keys, values and overhead.</summary>
    public StrongStateMachine(long maxBytes = 256L * 1024 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _maxBytes = maxBytes;
    }

    /// <summary>The index of the last entry applied (0 before any).</summary>
    public long LastApplied { get; private set; }

    /// <summary>Live entries held.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Bytes charged against the budget.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The value of <paramref name="scopedKey"/> at time <paramref name="nowMilliseconds"/>, or null when absent or expired.</summary>
    public StateValue? Get(string scopedKey, long nowMilliseconds)
    {
        ArgumentNullException.ThrowIfNull(scopedKey);
        lock (_lock)
        {
            return _entries.TryGetValue(scopedKey, out Entry? entry) && !entry.ExpiredAt(nowMilliseconds)
                ? new StateValue(entry.Value, entry.Version.ToString(CultureInfo.InvariantCulture),
                    entry.ExpiresAt == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(entry.ExpiresAt))
                : null;
        }
    }

    /// <summary>Applies the entry at <paramref name="index"/> (indices only grow; an index already applied is skipped).</summary>
    public StateWriteResult Apply(long index, StrongCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        lock (_lock)
        {
            if (index <= LastApplied)
            {
                return StateWriteResult.Applied;
            }

            LastApplied = index;
            long now = Math.Max(command.StampMilliseconds, _lastStamp);
            _lastStamp = now;
            var staged = new Dictionary<string, Entry?>(StringComparer.Ordinal);
            foreach (StateOperation op in command.Operations)
            {
                Entry? current = staged.TryGetValue(op.Key, out Entry? pending) ? pending : _entries.GetValueOrDefault(op.Key);
                if (current is not null && current.ExpiredAt(now))
                {
                    current = null;
                }

                if (op.Concurrency != StateConcurrency.LastWrite)
                {
                    if (!string.IsNullOrEmpty(op.ETag))
                    {
                        if (!long.TryParse(op.ETag, NumberStyles.None, CultureInfo.InvariantCulture, out long expected) || expected <= 0)
                        {
                            return new StateWriteResult(StateWriteStatus.ETagInvalid, op.Key);
                        }

                        if (current is null || current.Version != expected)
                        {
                            return new StateWriteResult(StateWriteStatus.ETagMismatch, op.Key);
                        }
                    }
                    else if (op.Concurrency == StateConcurrency.FirstWrite && !op.IsDelete && current is not null)
                    {
                        return new StateWriteResult(StateWriteStatus.ETagMismatch, op.Key);
                    }
                }

                Entry? next = op.Value is null ? null
                    : new Entry(op.Value, index, op.TimeToLive is TimeSpan ttl ? now + Math.Max(1, (long)ttl.TotalMilliseconds) : 0);
                staged[op.Key] = next;
            }

            long delta = 0;
            foreach ((string key, Entry? entry) in staged)
            {
                delta += SizeOf(key, entry) - SizeOf(key, _entries.GetValueOrDefault(key));
            }

            if (delta > 0 && _bytes + delta > _maxBytes)
            {
                return new StateWriteResult(StateWriteStatus.StoreFull, command.Operations.Count > 0 ? command.Operations[0].Key : null);
            }

            foreach ((string key, Entry? entry) in staged)
            {
                Put(key, entry);
            }

            return StateWriteResult.Applied;
        }
    }

    /// <summary>
    /// Writes the whole state (entries not expired at the last command's stamp) with the last applied
    /// index: version, index, stamp, count, then key, value, version and expiry per entry.
    /// </summary>
    public byte[] Snapshot()
    {
        lock (_lock)
        {
            using var buffer = new MemoryStream();
            Span<byte> scratch = stackalloc byte[8];
            buffer.WriteByte(SnapshotVersion);
            WriteInt64(buffer, scratch, LastApplied);
            WriteInt64(buffer, scratch, _lastStamp);
            var live = _entries.Where(e => !e.Value.ExpiredAt(_lastStamp)).ToList();
            BinaryPrimitives.WriteInt32LittleEndian(scratch, live.Count);
            buffer.Write(scratch[..4]);
            foreach ((string key, Entry entry) in live)
            {
                WriteBytes(buffer, scratch, Encoding.UTF8.GetBytes(key));
                WriteBytes(buffer, scratch, entry.Value);
                WriteInt64(buffer, scratch, entry.Version);
                WriteInt64(buffer, scratch, entry.ExpiresAt);
            }

            return buffer.ToArray();
        }
    }

    /// <summary>Replaces the state with a <see cref="Snapshot"/>; throws <see cref="FormatException"/> on anything else.</summary>
    public void Restore(ReadOnlySpan<byte> snapshot)
    {
        var reader = new SpanReader(snapshot);
        if (reader.Byte() != SnapshotVersion)
        {
            throw new FormatException("unknown strong state snapshot format");
        }

        long lastApplied = reader.Int64();
        long lastStamp = reader.Int64();
        int count = reader.Int32();
        if (count < 0)
        {
            throw new FormatException("bad entry count");
        }

        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        long bytes = 0;
        for (int i = 0; i < count; i++)
        {
            string key = Encoding.UTF8.GetString(reader.Bytes());
            var entry = new Entry(reader.Bytes().ToArray(), reader.Int64(), reader.Int64());
            entries[key] = entry;
            bytes += SizeOf(key, entry);
        }

        if (!reader.AtEnd)
        {
            throw new FormatException("trailing bytes after the last entry");
        }

        lock (_lock)
        {
            _entries.Clear();
            foreach ((string key, Entry entry) in entries)
            {
                _entries[key] = entry;
            }

            _bytes = bytes;
            LastApplied = lastApplied;
            _lastStamp = lastStamp;
        }
    }

    private void Put(string key, Entry? entry)
    {
        Interlocked.Add(ref _bytes, SizeOf(key, entry) - SizeOf(key, _entries.GetValueOrDefault(key)));
        if (entry is null)
        {
            _entries.Remove(key);
        }
        else
        {
            _entries[key] = entry;
        }
    }

    private static long SizeOf(string key, Entry? entry) => entry is null ? 0 : EntryOverhead + (key.Length * 2) + entry.Value.Length;

    private static void WriteInt64(MemoryStream buffer, Span<byte> scratch, long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(scratch, value);
        buffer.Write(scratch[..8]);
    }

    private static void WriteBytes(MemoryStream buffer, Span<byte> scratch, ReadOnlySpan<byte> bytes)
    {
        BinaryPrimitives.WriteInt32LittleEndian(scratch, bytes.Length);
        buffer.Write(scratch[..4]);
        buffer.Write(bytes);
    }

    private sealed record Entry(byte[] Value, long Version, long ExpiresAt)
    {
        public bool ExpiredAt(long now) => ExpiresAt != 0 && now >= ExpiresAt;
    }
}
