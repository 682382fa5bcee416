using Beemesh.State.Api;

namespace Beemesh.State.Eventual;

/// <summary>
/// One replica of an eventually consistent store: a map of last-writer-wins registers
/// (<see cref="StateEntry"/>), each stamped by this replica's <see cref="HybridLogicalClock"/>.
/// Sans-IO: time comes from a <see cref="TimeProvider"/>, replication is what the caller carries
/// between <see cref="Digest"/>, <see cref="EntriesNewerThan"/> and <see cref="Merge"/>.
/// </summary>
/// <remarks>
/// <para>Local writes (<see cref="Apply"/>) never wait for other replicas. ETag and first-write
/// checks see this replica's state only, as Dapr documents for eventually consistent stores: two
/// replicas may both accept a conditional write to the same key, and the later stamp wins
/// everywhere once they have exchanged entries.</para>
/// <para>Merge takes the greater stamp per key, so it is commutative, associative and idempotent,
/// and two replicas that have exchanged digests both ways hold equal maps.</para>
/// <para>Thread-safe: one lock per store.</para>
/// </remarks>
public sealed class EventualStore
{
    private readonly Dictionary<string, StateEntry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly EventualStoreOptions _options;
    private long _bytes;

    /// <summary>Creates an empty replica of store <paramref name="name"/>.</summary>
    public EventualStore(string name, ulong replica, TimeProvider time, EventualStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(time);
        Name = name;
        _time = time;
        _options = options ?? new EventualStoreOptions();
        Clock = new HybridLogicalClock(replica, time);
    }

    /// <summary>The store's name (Dapr's <c>storeName</c>).</summary>
    public string Name { get; }

    /// <summary>This replica's clock.</summary>
    public HybridLogicalClock Clock { get; }

    /// <summary>Entries held, tombstones included.</summary>
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

    /// <summary>Bytes charged against <see cref="EventualStoreOptions.MaxBytes"/>.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The current value of <paramref name="scopedKey"/>, or null when absent, deleted or expired.</summary>
    public StateValue? Get(string scopedKey)
    {
        ArgumentNullException.ThrowIfNull(scopedKey);
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_lock)
        {
            return _entries.TryGetValue(scopedKey, out StateEntry? entry) && !entry.IsAbsentAt(now) ? ToValue(entry) : null;
        }
    }

    /// <summary>
    /// Applies <paramref name="operations"/> in order, all or none: every ETag and first-write check
    /// sees the writes before it in the list, and nothing is stored unless every check passes.
    /// </summary>
    public StateWriteResult Apply(IReadOnlyList<StateOperation> operations)
    {
        ArgumentNullException.ThrowIfNull(operations);
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_lock)
        {
            var staged = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
            long delta = 0;
            foreach (StateOperation operation in operations)
            {
                StateEntry? current = staged.TryGetValue(operation.Key, out StateEntry? pending) ? pending
                    : _entries.GetValueOrDefault(operation.Key);
                bool present = current is not null && !current.IsAbsentAt(now);
                if (operation.Concurrency != StateConcurrency.LastWrite)
                {
                    if (!string.IsNullOrEmpty(operation.ETag))
                    {
                        if (!HybridTimestamp.TryParseETag(operation.ETag, out HybridTimestamp expected))
                        {
                            return new StateWriteResult(StateWriteStatus.ETagInvalid, operation.Key);
                        }

                        if (!present || current!.Stamp != expected)
                        {
                            return new StateWriteResult(StateWriteStatus.ETagMismatch, operation.Key);
                        }
                    }
                    else if (operation.Concurrency == StateConcurrency.FirstWrite && !operation.IsDelete && present)
                    {
                        return new StateWriteResult(StateWriteStatus.ETagMismatch, operation.Key);
                    }
                }

                long expires = 0;
                if (operation.TimeToLive is TimeSpan ttl)
                {
                    expires = now + (long)ttl.TotalMilliseconds;
                }

                var next = new StateEntry(operation.Key, operation.Value, Clock.Now(), expires);
                delta += next.Size - (current?.Size ?? 0);
                staged[operation.Key] = next;
            }

            if (delta > 0 && _bytes + delta > _options.MaxBytes)
            {
                return new StateWriteResult(StateWriteStatus.StoreFull, operations.Count > 0 ? operations[0].Key : null);
            }

            foreach (StateEntry entry in staged.Values)
            {
                Put(entry);
            }

            return StateWriteResult.Applied;
        }
    }

    /// <summary>Each key's stamp: what a peer needs to tell which of its entries this replica lacks.</summary>
    public Dictionary<string, HybridTimestamp> Digest()
    {
        lock (_lock)
        {
            var digest = new Dictionary<string, HybridTimestamp>(_entries.Count, StringComparer.Ordinal);
            foreach (StateEntry entry in _entries.Values)
            {
                digest[entry.Key] = entry.Stamp;
            }

            return digest;
        }
    }

    /// <summary>The entries newer here than in a peer's <paramref name="digest"/> (or missing from it).</summary>
    public List<StateEntry> EntriesNewerThan(IReadOnlyDictionary<string, HybridTimestamp> digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        lock (_lock)
        {
            var newer = new List<StateEntry>();
            foreach (StateEntry entry in _entries.Values)
            {
                if (!digest.TryGetValue(entry.Key, out HybridTimestamp theirs) || entry.Stamp > theirs)
                {
                    newer.Add(entry);
                }
            }

            return newer;
        }
    }

    /// <summary>
    /// Takes in entries from another replica: per key the winner of <see cref="StateEntry.Winner"/>.
    /// Merged entries are not refused for the byte budget: every replica applied the same budget to
    /// its own writes. Returns how many entries changed.
    /// </summary>
    public int Merge(IEnumerable<StateEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        int changed = 0;
        lock (_lock)
        {
            foreach (StateEntry remote in entries)
            {
                Clock.Observe(remote.Stamp);
                if (_entries.TryGetValue(remote.Key, out StateEntry? local))
                {
                    StateEntry winner = StateEntry.Winner(local, remote);
                    if (ReferenceEquals(winner, local) || winner == local)
                    {
                        continue;
                    }
                }

                Put(remote);
                changed++;
            }
        }

        return changed;
    }

    /// <summary>
    /// Drops tombstones and expired values older than <see cref="EventualStoreOptions.TombstoneGrace"/>.
    /// Returns how many entries went.
    /// </summary>
    public int CollectGarbage()
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        long grace = (long)_options.TombstoneGrace.TotalMilliseconds;
        lock (_lock)
        {
            var gone = new List<StateEntry>();
            foreach (StateEntry entry in _entries.Values)
            {
                long deadAt = entry.IsTombstone ? entry.Stamp.PhysicalMilliseconds
                    : entry.ExpiresAtMilliseconds != 0 ? entry.ExpiresAtMilliseconds : long.MaxValue;
                if (deadAt != long.MaxValue && now - deadAt >= grace)
                {
                    gone.Add(entry);
                }
            }

            foreach (StateEntry entry in gone)
            {
                _entries.Remove(entry.Key);
                _bytes -= entry.Size;
            }

            return gone.Count;
        }
    }

    /// <summary>A copy of every entry, tombstones included, in key order.</summary>
    public List<StateEntry> Snapshot()
    {
        lock (_lock)
        {
            var all = new List<StateEntry>(_entries.Values);
            all.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
            return all;
        }
    }

    private void Put(StateEntry entry)
    {
        if (_entries.TryGetValue(entry.Key, out StateEntry? old))
        {
            _bytes -= old.Size;
        }

        _entries[entry.Key] = entry;
        _bytes += entry.Size;
    }

    private static StateValue ToValue(StateEntry entry) => new(
        entry.Value!,
        entry.Stamp.ToETag(),
        entry.ExpiresAtMilliseconds == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(entry.ExpiresAtMilliseconds));
}
