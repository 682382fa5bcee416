using Beemesh.State.Api;

namespace Beemesh.State.Eventual;

/// <summary>
/// One replica of an eventually consistent store: a map of last-writer-wins registers
/// (<see cref="StateEntry"/>), each stamped by this replica's <see cref="HybridLogicalClock"/>.
/// Sans-IO: time comes from a <see cref="TimeProvider"/>, replication is what the caller carries
/// between <see cref="BucketDigest"/>, <see cref="Summarize"/>, <see cref="Reconcile"/>,
/// <see cref="EntriesFor"/> and <see cref="Merge(IEnumerable{StateEntry})"/>.
/// </summary>
/// <remarks>
/// <para>Local writes (<see cref="Apply(IReadOnlyList{StateOperation})"/>) never wait for other
/// replicas. ETag and first-write checks see this replica's state only, as Dapr documents for
/// eventually consistent stores: two replicas may both accept a conditional write to the same key,
/// and the later stamp wins everywhere once they have exchanged entries.</para>
/// <para>Merge takes the greater stamp per key, so it is commutative, associative and idempotent,
/// and two replicas that have exchanged digests both ways hold equal maps.</para>
/// <para>Entries are kept in <see cref="DigestBuckets.Count"/> maps, one per digest bucket, and each
/// bucket's digest is updated on every change, so a digest costs O(buckets) and a differing
/// bucket O(its entries), whatever the store's size.</para>
/// <para>Thread-safe: one lock per store.</para>
/// </remarks>
public sealed class EventualStore
{
    private readonly Dictionary<string, StateEntry>[] _buckets = new Dictionary<string, StateEntry>[DigestBuckets.Count];
    private readonly ulong[] _digest = new ulong[DigestBuckets.Count];
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly EventualStoreOptions _options;
    private long _bytes;
    private int _count;

    /// <summary>Creates an empty replica of store <paramref name="name"/>.</summary>
    public EventualStore(string name, ulong replica, TimeProvider time, EventualStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(time);
        Name = name;
        _time = time;
        _options = options ?? new EventualStoreOptions();
        Clock = new HybridLogicalClock(replica, time);
        for (int i = 0; i < _buckets.Length; i++)
        {
            _buckets[i] = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
        }
    }

    /// <summary>The store's name (Dapr's <c>storeName</c>).</summary>
    public string Name { get; }

    /// <summary>This replica's clock.</summary>
    public HybridLogicalClock Clock { get; }

    /// <summary>The store's settings.</summary>
    public EventualStoreOptions Options => _options;

    /// <summary>Entries held, tombstones included.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Bytes charged against <see cref="EventualStoreOptions.MaxBytes"/>.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The current value of <paramref name="scopedKey"/>, or null when absent, deleted or expired.</summary>
    public StateValue? Get(string scopedKey)
    {
        ArgumentNullException.ThrowIfNull(scopedKey);
        long now = NowMilliseconds();
        lock (_lock)
        {
            return Find(scopedKey) is StateEntry entry && !entry.IsAbsentAt(now) ? ToValue(entry) : null;
        }
    }

    /// <summary>
    /// Applies <paramref name="operations"/> in order, all or none: every ETag and first-write check
    /// sees the writes before it in the list, and nothing is stored unless every check passes.
    /// </summary>
    public StateWriteResult Apply(IReadOnlyList<StateOperation> operations) => Apply(operations, null);

    /// <summary>
    /// <see cref="Apply(IReadOnlyList{StateOperation})"/>, adding the entries it stored (one per key
    /// written, stamped) to <paramref name="written"/>, for pushing them to other replicas.
    /// </summary>
    public StateWriteResult Apply(IReadOnlyList<StateOperation> operations, ICollection<StateEntry>? written)
    {
        ArgumentNullException.ThrowIfNull(operations);
        long now = NowMilliseconds();
        lock (_lock)
        {
            var staged = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
            long delta = 0;
            foreach (StateOperation operation in operations)
            {
                StateEntry? current = staged.TryGetValue(operation.Key, out StateEntry? pending) ? pending : Find(operation.Key);
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
                written?.Add(entry);
            }

            return StateWriteResult.Applied;
        }
    }

    /// <summary>Each key's stamp: what a peer needs to tell which of its entries this replica lacks.</summary>
    public Dictionary<string, HybridTimestamp> Digest()
    {
        lock (_lock)
        {
            var digest = new Dictionary<string, HybridTimestamp>(_count, StringComparer.Ordinal);
            foreach (Dictionary<string, StateEntry> bucket in _buckets)
            {
                foreach (StateEntry entry in bucket.Values)
                {
                    digest[entry.Key] = entry.Stamp;
                }
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
            foreach (Dictionary<string, StateEntry> bucket in _buckets)
            {
                foreach (StateEntry entry in bucket.Values)
                {
                    if (!digest.TryGetValue(entry.Key, out HybridTimestamp theirs) || entry.Stamp > theirs)
                    {
                        newer.Add(entry);
                    }
                }
            }

            return newer;
        }
    }

    /// <summary>A copy of the per-bucket digests (<see cref="DigestBuckets"/>).</summary>
    public ulong[] BucketDigest()
    {
        lock (_lock)
        {
            return (ulong[])_digest.Clone();
        }
    }

    /// <summary>
    /// Answers a peer's bucket digest: the buckets whose digest differs from <paramref name="theirs"/>,
    /// taken whole from <paramref name="startBucket"/> on (wrapping) while their entries fit in
    /// <paramref name="maxStamps"/> and about <paramref name="maxBytes"/> (the first differing bucket
    /// is always taken, cut at the limits), with the (key, stamp) of each entry in them. Entries dead for longer than the grace period
    /// are left out: they are garbage here and must not travel.
    /// </summary>
    public BucketSummary Summarize(ReadOnlySpan<ulong> theirs, int startBucket, int maxStamps, long maxBytes)
    {
        if (theirs.Length != DigestBuckets.Count)
        {
            throw new ArgumentException($"a digest has {DigestBuckets.Count} buckets, not {theirs.Length}", nameof(theirs));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxStamps);
        long now = NowMilliseconds();
        var buckets = new List<int>();
        var stamps = new List<EntryStamp>();
        long bytes = 0;
        lock (_lock)
        {
            for (int i = 0; i < DigestBuckets.Count; i++)
            {
                int b = (int)((uint)(startBucket + i) % DigestBuckets.Count);
                if (_digest[b] == theirs[b])
                {
                    continue;
                }

                Dictionary<string, StateEntry> bucket = _buckets[b];
                if (buckets.Count > 0 && (stamps.Count + bucket.Count > maxStamps || bytes + BucketBytes(bucket) > maxBytes))
                {
                    break;
                }

                buckets.Add(b);
                foreach (StateEntry entry in bucket.Values)
                {
                    if (stamps.Count == maxStamps || (stamps.Count > 0 && bytes > maxBytes))
                    {
                        break;
                    }

                    if (!IsGarbage(entry, now))
                    {
                        stamps.Add(new EntryStamp(entry.Key, entry.Stamp));
                        bytes += StampSize(entry.Key);
                    }
                }
            }
        }

        return new BucketSummary(buckets, stamps);
    }

    /// <summary>
    /// Compares this replica's entries in a peer's summarized buckets with the peer's stamps: the
    /// entries to send it (its write is older or missing), at most <paramref name="maxEntries"/> and
    /// about <paramref name="maxBytes"/> of them (at least one, however large), and the keys to ask it for (this replica's write is
    /// older or missing), at most <paramref name="maxEntries"/>, all within about <paramref name="maxBytes"/>. What is left over is found again in
    /// the next round, since the digests still differ.
    /// </summary>
    public Reconciliation Reconcile(BucketSummary summary, int maxEntries, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(summary);
        long now = NowMilliseconds();
        var theirs = new Dictionary<string, HybridTimestamp>(summary.Stamps.Count, StringComparer.Ordinal);
        foreach (EntryStamp stamp in summary.Stamps)
        {
            theirs[stamp.Key] = stamp.Stamp;
        }

        var send = new List<StateEntry>();
        var want = new List<string>();
        long bytes = 0;
        lock (_lock)
        {
            foreach (int b in summary.Buckets)
            {
                if ((uint)b >= DigestBuckets.Count)
                {
                    continue;
                }

                foreach (StateEntry entry in _buckets[b].Values)
                {
                    if (send.Count == maxEntries || (send.Count > 0 && bytes + WireSize(entry) > maxBytes))
                    {
                        break;
                    }

                    if (!IsGarbage(entry, now) && (!theirs.TryGetValue(entry.Key, out HybridTimestamp stamp) || entry.Stamp > stamp))
                    {
                        send.Add(entry);
                        bytes += WireSize(entry);
                    }
                }
            }

            foreach (EntryStamp stamp in summary.Stamps)
            {
                if (want.Count == maxEntries || (want.Count > 0 && bytes + StampSize(stamp.Key) > maxBytes))
                {
                    break;
                }

                if (Find(stamp.Key) is not StateEntry mine || stamp.Stamp > mine.Stamp)
                {
                    want.Add(stamp.Key);
                    bytes += StampSize(stamp.Key);
                }
            }
        }

        return new Reconciliation(send, want);
    }

    /// <summary>
    /// The entries of <paramref name="keys"/> this replica holds (and that are not garbage), at most
    /// <paramref name="maxEntries"/> and about <paramref name="maxBytes"/> of them.
    /// </summary>
    public List<StateEntry> EntriesFor(IEnumerable<string> keys, int maxEntries, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(keys);
        long now = NowMilliseconds();
        var found = new List<StateEntry>();
        long bytes = 0;
        lock (_lock)
        {
            foreach (string key in keys)
            {
                if (found.Count == maxEntries)
                {
                    break;
                }

                if (Find(key) is StateEntry entry && !IsGarbage(entry, now))
                {
                    if (found.Count > 0 && bytes + WireSize(entry) > maxBytes)
                    {
                        break;
                    }

                    found.Add(entry);
                    bytes += WireSize(entry);
                }
            }
        }

        return found;
    }

    /// <summary>
    /// Whether <paramref name="entry"/> is dead (a tombstone, or a value past its expiry) for at least
    /// <see cref="EventualStoreOptions.TombstoneGrace"/>: garbage collection drops such entries, and
    /// replication neither sends nor takes them in, so a dropped tombstone does not come back.
    /// </summary>
    public bool IsGarbage(StateEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return IsGarbage(entry, NowMilliseconds());
    }

    /// <summary>
    /// Takes in entries from another replica: per key the winner of <see cref="StateEntry.Winner"/>.
    /// Merged entries are not refused for the byte budget: every replica applied the same budget to
    /// its own writes. Returns how many entries changed.
    /// </summary>
    public int Merge(IEnumerable<StateEntry> entries) => Merge(entries, null);

    /// <summary>
    /// <see cref="Merge(IEnumerable{StateEntry})"/>, adding the entries that changed this replica to
    /// <paramref name="changed"/> (for writing them to the replica's journal).
    /// </summary>
    public int Merge(IEnumerable<StateEntry> entries, ICollection<StateEntry>? changed)
    {
        ArgumentNullException.ThrowIfNull(entries);
        int count = 0;
        lock (_lock)
        {
            foreach (StateEntry remote in entries)
            {
                Clock.Observe(remote.Stamp);
                if (Find(remote.Key) is StateEntry local)
                {
                    StateEntry winner = StateEntry.Winner(local, remote);
                    if (ReferenceEquals(winner, local) || winner == local)
                    {
                        continue;
                    }
                }

                Put(remote);
                changed?.Add(remote);
                count++;
            }
        }

        return count;
    }

    /// <summary>
    /// Drops tombstones and expired values older than <see cref="EventualStoreOptions.TombstoneGrace"/>.
    /// Returns how many entries went.
    /// </summary>
    public int CollectGarbage()
    {
        long now = NowMilliseconds();
        lock (_lock)
        {
            var gone = new List<StateEntry>();
            foreach (Dictionary<string, StateEntry> bucket in _buckets)
            {
                foreach (StateEntry entry in bucket.Values)
                {
                    if (IsGarbage(entry, now))
                    {
                        gone.Add(entry);
                    }
                }
            }

            foreach (StateEntry entry in gone)
            {
                int b = DigestBuckets.Of(entry.Key);
                _buckets[b].Remove(entry.Key);
                _digest[b] ^= DigestBuckets.Hash(entry.Key, entry.Stamp);
                _bytes -= entry.Size;
                _count--;
            }

            return gone.Count;
        }
    }

    /// <summary>A copy of every entry, tombstones included, in key order.</summary>
    public List<StateEntry> Snapshot()
    {
        lock (_lock)
        {
            var all = new List<StateEntry>(_count);
            foreach (Dictionary<string, StateEntry> bucket in _buckets)
            {
                all.AddRange(bucket.Values);
            }

            all.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
            return all;
        }
    }

    /// <summary>Bytes an entry takes on the wire, about: what the size limits of a batch count.</summary>
    public static long WireSize(StateEntry entry) => (entry.Key.Length * 3L) + (entry.Value?.Length ?? 0) + 40;

    private static long StampSize(string key) => (key.Length * 3L) + 18;

    private static long BucketBytes(Dictionary<string, StateEntry> bucket)
    {
        long bytes = 0;
        foreach (string key in bucket.Keys)
        {
            bytes += StampSize(key);
        }

        return bytes;
    }

    private long NowMilliseconds() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private bool IsGarbage(StateEntry entry, long now)
    {
        long deadAt = entry.IsTombstone ? entry.Stamp.PhysicalMilliseconds
            : entry.ExpiresAtMilliseconds != 0 ? entry.ExpiresAtMilliseconds : long.MaxValue;
        return deadAt != long.MaxValue && now - deadAt >= (long)_options.TombstoneGrace.TotalMilliseconds;
    }

    private StateEntry? Find(string key) => _buckets[DigestBuckets.Of(key)].GetValueOrDefault(key);

    private void Put(StateEntry entry)
    {
        int b = DigestBuckets.Of(entry.Key);
        Dictionary<string, StateEntry> bucket = _buckets[b];
        if (bucket.TryGetValue(entry.Key, out StateEntry? old))
        {
            _bytes -= old.Size;
            _digest[b] ^= DigestBuckets.Hash(old.Key, old.Stamp);
        }
        else
        {
            _count++;
        }

        bucket[entry.Key] = entry;
        _digest[b] ^= DigestBuckets.Hash(entry.Key, entry.Stamp);
        _bytes += entry.Size;
    }

    private static StateValue ToValue(StateEntry entry) => new(
        entry.Value!,
        entry.Stamp.ToETag(),
        entry.ExpiresAtMilliseconds == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(entry.ExpiresAtMilliseconds));
}
