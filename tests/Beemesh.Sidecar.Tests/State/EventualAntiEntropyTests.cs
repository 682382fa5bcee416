using Beemesh.State.Api;
using Beemesh.State.Eventual;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// The sans-IO anti-entropy exchange of the eventual store: per-bucket digests kept current on every
/// change, the summary of differing buckets, reconciliation, and a whole round carried through the
/// wire codec.
/// </summary>
public sealed class EventualAntiEntropyTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private const int Limit = 4096;

    private static string Dump(EventualStore store) => string.Join(";", store.Snapshot().Select(e =>
        $"{e.Key}={(e.Value is null ? "tomb" : Convert.ToHexString(e.Value))}@{e.Stamp.ToETag()}/{e.ExpiresAtMilliseconds}"));

    private static ulong[] Recomputed(EventualStore store)
    {
        var digest = new ulong[DigestBuckets.Count];
        foreach (StateEntry entry in store.Snapshot())
        {
            digest[DigestBuckets.Of(entry.Key)] ^= DigestBuckets.Hash(entry.Key, entry.Stamp);
        }

        return digest;
    }

    /// <summary>
    /// One round initiated by <paramref name="from"/>, every message encoded and decoded as on the
    /// wire: digest, summary, entries and wants, wanted entries. Returns the entries that travelled.
    /// </summary>
    private static int Round(EventualStore from, EventualStore to, int limit = Limit, int start = 0)
    {
        Assert.True(EventualWire.TryDecodeDigest(EventualWire.EncodeDigest(from.BucketDigest()), out ulong[] digest, out _));
        BucketSummary answer = to.Summarize(digest, start, limit, 4 << 20);
        Assert.True(EventualWire.TryDecodeSummary(EventualWire.EncodeSummary(answer), limit, out BucketSummary summary, out _));
        if (summary.Buckets.Count == 0)
        {
            return 0;
        }

        Reconciliation plan = from.Reconcile(summary, limit, 4 << 20);
        Assert.True(EventualWire.TryDecodeEntries(EventualWire.EncodeEntries(plan.Send, plan.Want), limit, out List<StateEntry> pushed, out List<string> want, out _));
        to.Merge(pushed);
        List<StateEntry> back = to.EntriesFor(want, limit, 4 << 20);
        Assert.True(EventualWire.TryDecodeEntries(EventualWire.EncodeEntries(back, []), limit, out List<StateEntry> pulled, out _, out _));
        from.Merge(pulled);
        return pushed.Count + pulled.Count;
    }

    [Property]
    public bool TheKeptDigestEqualsOneRecomputedFromTheEntries((bool Merge, byte Key, byte Value, byte Advance, bool Delete)[] steps)
    {
        var time = new FakeTimeProvider(Start);
        var store = new EventualStore("s", 1, time, new EventualStoreOptions { TombstoneGrace = TimeSpan.FromMilliseconds(40) });
        foreach (var s in steps)
        {
            time.Advance(TimeSpan.FromMilliseconds(s.Advance % 8));
            string key = "a||" + (s.Key % 7);
            if (s.Merge)
            {
                store.Merge([new StateEntry(key, s.Delete ? null : [s.Value], new HybridTimestamp(store.Clock.Now().Ticks - (s.Value % 3), 2), 0)]);
            }
            else
            {
                store.Apply([s.Delete ? StateOperation.Delete(key) : StateOperation.Upsert(key, [s.Value])]);
            }

            if (s.Value % 5 == 0)
            {
                store.CollectGarbage();
            }
        }

        return store.BucketDigest().AsSpan().SequenceEqual(Recomputed(store));
    }

    /// <summary>
    /// Two replicas take different writes (same keys and different keys, deletes, TTLs) on drifting
    /// clocks; one round started by either side through the codec leaves them equal, with equal digests.
    /// </summary>
    [Property]
    public bool OneRoundThroughTheCodecMakesTwoReplicasEqual((bool OnB, byte Key, byte Value, byte AdvanceMs, bool Delete)[] writes, bool startedByB)
    {
        var timeA = new FakeTimeProvider(Start);
        var timeB = new FakeTimeProvider(Start.AddMilliseconds(23));
        var a = new EventualStore("s", 1, timeA);
        var b = new EventualStore("s", 2, timeB);
        foreach (var w in writes)
        {
            (w.OnB ? timeB : timeA).Advance(TimeSpan.FromMilliseconds(w.AdvanceMs % 5));
            string key = "a||" + (w.Key % 9);
            (w.OnB ? b : a).Apply([w.Delete ? StateOperation.Delete(key) : StateOperation.Upsert(key, [w.Value], timeToLive: w.Value % 4 == 0 ? TimeSpan.FromSeconds(1) : null)]);
        }

        if (startedByB)
        {
            Round(b, a);
        }
        else
        {
            Round(a, b);
        }

        return Dump(a) == Dump(b) && a.BucketDigest().AsSpan().SequenceEqual(b.BucketDigest()) && Round(a, b) == 0;
    }

    [Fact]
    public void EqualReplicasHaveEqualDigestsAndNothingToSummarize()
    {
        var a = new EventualStore("s", 1, new FakeTimeProvider(Start));
        a.Apply([StateOperation.Upsert("a||x", [1]), StateOperation.Upsert("a||y", [2])]);
        var b = new EventualStore("s", 2, new FakeTimeProvider(Start));
        b.Merge(a.Snapshot());

        Assert.Equal(a.BucketDigest(), b.BucketDigest());
        BucketSummary summary = b.Summarize(a.BucketDigest(), 0, Limit, 1 << 20);
        Assert.Empty(summary.Buckets);
        Assert.Empty(summary.Stamps);
    }

    [Fact]
    public void ADigestDiffNamesOnlyTheBucketsThatDifferAndReconcilingPushesAndPulls()
    {
        var a = new EventualStore("s", 1, new FakeTimeProvider(Start));
        var b = new EventualStore("s", 2, new FakeTimeProvider(Start.AddSeconds(1)));
        for (int i = 0; i < 50; i++)
        {
            a.Apply([StateOperation.Upsert("a||shared" + i, [(byte)i])]);
        }

        b.Merge(a.Snapshot());
        a.Apply([StateOperation.Upsert("a||only-a", [1])]);
        b.Apply([StateOperation.Upsert("a||only-b", [2]), StateOperation.Upsert("a||shared7", [99])]);

        BucketSummary summary = b.Summarize(a.BucketDigest(), 0, Limit, 1 << 20);
        int[] expected = [.. new[] { "a||only-a", "a||only-b", "a||shared7" }.Select(DigestBuckets.Of).Distinct().Order()];
        Assert.Equal(expected, summary.Buckets.Order());
        Assert.All(summary.Stamps, s => Assert.Contains(DigestBuckets.Of(s.Key), expected));

        Reconciliation plan = a.Reconcile(summary, Limit, 4 << 20);
        Assert.Equal(["a||only-a"], plan.Send.Select(e => e.Key));
        Assert.Equal(["a||only-b", "a||shared7"], plan.Want.Order());
    }

    [Fact]
    public void LimitsSplitABigDifferenceOverABoundedNumberOfRounds()
    {
        var a = new EventualStore("s", 1, new FakeTimeProvider(Start));
        var b = new EventualStore("s", 2, new FakeTimeProvider(Start));
        for (int i = 0; i < 300; i++)
        {
            (i % 2 == 0 ? a : b).Apply([StateOperation.Upsert("a||k" + i, [(byte)i])]);
        }

        // 300 keys, at most 32 stamps and entries a message: each round moves at least one bucket's worth.
        int rounds = 0;
        while (Round(a, b, limit: 32, start: rounds * 97) > 0)
        {
            rounds++;
            Assert.True(rounds <= 300, "no progress");
        }

        Assert.Equal(Dump(a), Dump(b));
        Assert.Equal(300, a.Count);
        Assert.InRange(rounds, 300 / 64, 300);
    }

    [Fact]
    public void EntriesDeadPastTheGracePeriodNeitherTravelNorCountAsWanted()
    {
        var time = new FakeTimeProvider(Start);
        var options = new EventualStoreOptions { TombstoneGrace = TimeSpan.FromSeconds(10) };
        var a = new EventualStore("s", 1, time, options);
        var b = new EventualStore("s", 2, time, options);
        a.Apply([StateOperation.Upsert("a||gone", [1])]);
        a.Apply([StateOperation.Delete("a||gone")]);
        time.Advance(TimeSpan.FromSeconds(11));
        a.Apply([StateOperation.Upsert("a||live", [2])]);

        Assert.True(a.IsGarbage(a.Snapshot().Single(e => e.Key == "a||gone")));
        BucketSummary summary = a.Summarize(b.BucketDigest(), 0, Limit, 1 << 20);
        Assert.DoesNotContain(summary.Stamps, s => s.Key == "a||gone");
        Assert.Empty(a.EntriesFor(["a||gone"], Limit, 1 << 20));
        Round(b, a);
        Assert.Equal(["a||live"], b.Snapshot().Select(e => e.Key));
        Assert.Equal(1, a.CollectGarbage());
        Assert.Equal(a.BucketDigest(), b.BucketDigest());
    }
}
