using Beemesh.State.Api;
using Beemesh.State.Eventual;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// The eventual store's merge is a join: commutative, associative and idempotent, and two replicas
/// that have exchanged digests both ways are equal.
/// </summary>
public sealed class EventualStorePropertyTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A small key, value, stamp and expiry space, so generated writes collide often.</summary>
    private static List<StateEntry> Entries((byte Key, byte Value, byte Ticks, bool Replica, bool Tombstone)[] raw) =>
        raw.Select(r => new StateEntry(
            "a||" + (r.Key % 4),
            r.Tombstone ? null : [r.Value],
            new HybridTimestamp(r.Ticks % 16, r.Replica ? 2UL : 1UL),
            r.Value % 3 == 0 ? 0 : r.Value)).ToList();

    private static EventualStore Store(ulong replica, IEnumerable<StateEntry>? entries = null)
    {
        var store = new EventualStore("s", replica, new FakeTimeProvider(Start));
        if (entries is not null)
        {
            store.Merge(entries);
        }

        return store;
    }

    private static string Dump(EventualStore store) => string.Join(";", store.Snapshot().Select(e =>
        $"{e.Key}={(e.Value is null ? "tomb" : Convert.ToHexString(e.Value))}@{e.Stamp.ToETag()}/{e.ExpiresAtMilliseconds}"));

    [Property]
    public bool MergeIsCommutative((byte, byte, byte, bool, bool)[] a, (byte, byte, byte, bool, bool)[] b)
    {
        EventualStore ab = Store(9, Entries(a));
        ab.Merge(Entries(b));
        EventualStore ba = Store(9, Entries(b));
        ba.Merge(Entries(a));
        return Dump(ab) == Dump(ba);
    }

    [Property]
    public bool MergeIsAssociative((byte, byte, byte, bool, bool)[] a, (byte, byte, byte, bool, bool)[] b, (byte, byte, byte, bool, bool)[] c)
    {
        EventualStore left = Store(9, Entries(a));
        left.Merge(Entries(b));
        left.Merge(Entries(c));
        EventualStore bc = Store(9, Entries(b));
        bc.Merge(Entries(c));
        EventualStore right = Store(9, Entries(a));
        right.Merge(bc.Snapshot());
        return Dump(left) == Dump(right);
    }

    [Property]
    public bool MergeIsIdempotent((byte, byte, byte, bool, bool)[] a)
    {
        EventualStore once = Store(9, Entries(a));
        string before = Dump(once);
        int changed = once.Merge(once.Snapshot());
        once.Merge(Entries(a));
        return changed == 0 && Dump(once) == before;
    }

    /// <summary>
    /// Two replicas take local writes (upserts, deletes, TTLs) on clocks that drift apart, then
    /// exchange digests both ways: afterwards they hold the same entries and read the same values.
    /// </summary>
    [Property]
    public bool ReplicasAreEqualAfterExchangingDigests((bool OnB, byte Key, byte Value, byte AdvanceMs, bool Delete)[] writes)
    {
        var timeA = new FakeTimeProvider(Start);
        var timeB = new FakeTimeProvider(Start.AddMilliseconds(37));
        var a = new EventualStore("s", 1, timeA);
        var b = new EventualStore("s", 2, timeB);
        foreach (var w in writes)
        {
            (w.OnB ? timeB : timeA).Advance(TimeSpan.FromMilliseconds(w.AdvanceMs % 5));
            EventualStore target = w.OnB ? b : a;
            string key = "a||" + (w.Key % 5);
            target.Apply([w.Delete ? StateOperation.Delete(key) : StateOperation.Upsert(key, [w.Value], timeToLive: w.Value % 4 == 0 ? TimeSpan.FromSeconds(1) : null)]);
        }

        a.Merge(b.EntriesNewerThan(a.Digest()));
        b.Merge(a.EntriesNewerThan(b.Digest()));
        if (Dump(a) != Dump(b))
        {
            return false;
        }

        // A write after the exchange orders after everything either replica saw.
        HybridTimestamp newest = a.Snapshot().Select(e => e.Stamp).DefaultIfEmpty().Max();
        a.Apply([StateOperation.Upsert("a||after", [1])]);
        return a.Snapshot().Single(e => e.Key == "a||after").Stamp > newest;
    }
}
