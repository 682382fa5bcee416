using System.Text;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>The eventual store's Dapr semantics on one replica, on a fake clock.</summary>
public sealed class EventualStoreTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private EventualStore NewStore(EventualStoreOptions? options = null) => new("statestore", 1, _time, options);

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void SaveThenGetReturnsTheValueAndANewETagPerWrite()
    {
        EventualStore store = NewStore();
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", Bytes("1"))]).Status);
        StateValue first = store.Get("a||k")!;
        Assert.Equal("1", Encoding.UTF8.GetString(first.Value));
        store.Apply([StateOperation.Upsert("a||k", Bytes("2"))]);
        StateValue second = store.Get("a||k")!;
        Assert.Equal("2", Encoding.UTF8.GetString(second.Value));
        Assert.NotEqual(first.ETag, second.ETag);
        Assert.Null(store.Get("a||other"));
    }

    [Fact]
    public void AStaleETagIsAMismatchAndChangesNothing()
    {
        EventualStore store = NewStore();
        store.Apply([StateOperation.Upsert("a||k", Bytes("1"))]);
        string old = store.Get("a||k")!.ETag;
        store.Apply([StateOperation.Upsert("a||k", Bytes("2"))]);
        StateWriteResult result = store.Apply([StateOperation.Upsert("a||k", Bytes("3"), old)]);
        Assert.Equal(new StateWriteResult(StateWriteStatus.ETagMismatch, "a||k"), result);
        Assert.Equal("2", Encoding.UTF8.GetString(store.Get("a||k")!.Value));
        string current = store.Get("a||k")!.ETag;
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", Bytes("3"), current)]).Status);
    }

    [Fact]
    public void AnETagForAnAbsentKeyIsAMismatchAndAForeignOneIsInvalid()
    {
        EventualStore store = NewStore();
        Assert.Equal(StateWriteStatus.ETagMismatch, store.Apply([StateOperation.Upsert("a||k", Bytes("1"), "10-1")]).Status);
        Assert.Equal(StateWriteStatus.ETagInvalid, store.Apply([StateOperation.Upsert("a||k", Bytes("1"), "not-an-etag")]).Status);
        Assert.Equal(StateWriteStatus.ETagInvalid, store.Apply([StateOperation.Delete("a||k", "xyz")]).Status);
    }

    [Fact]
    public void FirstWriteWithoutETagOnlyCreatesAndLastWriteIgnoresTheETag()
    {
        EventualStore store = NewStore();
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", Bytes("1"), concurrency: StateConcurrency.FirstWrite)]).Status);
        Assert.Equal(StateWriteStatus.ETagMismatch, store.Apply([StateOperation.Upsert("a||k", Bytes("2"), concurrency: StateConcurrency.FirstWrite)]).Status);
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", Bytes("3"), "1-1", StateConcurrency.LastWrite)]).Status);
        Assert.Equal("3", Encoding.UTF8.GetString(store.Get("a||k")!.Value));
    }

    [Fact]
    public void DeleteWithAMatchingETagRemovesAndAStaleOneDoesNot()
    {
        EventualStore store = NewStore();
        store.Apply([StateOperation.Upsert("a||k", Bytes("1"))]);
        string etag = store.Get("a||k")!.ETag;
        store.Apply([StateOperation.Upsert("a||k", Bytes("2"))]);
        Assert.Equal(StateWriteStatus.ETagMismatch, store.Apply([StateOperation.Delete("a||k", etag)]).Status);
        Assert.NotNull(store.Get("a||k"));
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Delete("a||k", store.Get("a||k")!.ETag)]).Status);
        Assert.Null(store.Get("a||k"));
        Assert.Equal(1, store.Count); // the tombstone
    }

    [Fact]
    public void AValueWithATimeToLiveReadsAsAbsentOnceItExpires()
    {
        EventualStore store = NewStore();
        store.Apply([StateOperation.Upsert("a||k", Bytes("1"), timeToLive: TimeSpan.FromSeconds(2))]);
        StateValue value = store.Get("a||k")!;
        Assert.Equal(_time.GetUtcNow().AddSeconds(2), value.ExpiresAt);
        _time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.NotNull(store.Get("a||k"));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(store.Get("a||k"));
        // Expired counts as absent for first-write.
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", Bytes("2"), concurrency: StateConcurrency.FirstWrite)]).Status);
    }

    [Fact]
    public void ATransactionAppliesAllOrNothingAndSeesItsOwnEarlierWrites()
    {
        EventualStore store = NewStore();
        store.Apply([StateOperation.Upsert("a||x", Bytes("1"))]);
        StateWriteResult failed = store.Apply([
            StateOperation.Upsert("a||y", Bytes("new")),
            StateOperation.Delete("a||x"),
            StateOperation.Upsert("a||z", Bytes("z"), "5-1"),
        ]);
        Assert.Equal(new StateWriteResult(StateWriteStatus.ETagMismatch, "a||z"), failed);
        Assert.Null(store.Get("a||y"));
        Assert.NotNull(store.Get("a||x"));

        StateWriteResult applied = store.Apply([
            StateOperation.Upsert("a||y", Bytes("1")),
            StateOperation.Upsert("a||y", Bytes("2"), concurrency: StateConcurrency.FirstWrite),
        ]);
        Assert.Equal(StateWriteStatus.ETagMismatch, applied.Status);
        Assert.Null(store.Get("a||y"));
    }

    [Fact]
    public void WritesPastTheByteBudgetAreRefusedAndOverwritesStillFit()
    {
        EventualStore store = NewStore(new EventualStoreOptions { MaxBytes = 2000 });
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", new byte[1500])]).Status);
        Assert.Equal(StateWriteStatus.StoreFull, store.Apply([StateOperation.Upsert("a||j", new byte[500])]).Status);
        Assert.Null(store.Get("a||j"));
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||k", new byte[1600])]).Status);
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Delete("a||k")]).Status);
        Assert.Equal(StateWriteStatus.Applied, store.Apply([StateOperation.Upsert("a||j", new byte[500])]).Status);
        Assert.True(store.Bytes <= 2000);
    }

    [Fact]
    public void TombstonesAndExpiredValuesGoAfterTheGracePeriodOnly()
    {
        EventualStore store = NewStore(new EventualStoreOptions { TombstoneGrace = TimeSpan.FromMinutes(10) });
        store.Apply([StateOperation.Upsert("a||gone", Bytes("1")), StateOperation.Upsert("a||ttl", Bytes("1"), timeToLive: TimeSpan.FromSeconds(1)), StateOperation.Upsert("a||kept", Bytes("1"))]);
        store.Apply([StateOperation.Delete("a||gone")]);
        _time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(0, store.CollectGarbage());
        Assert.Equal(3, store.Count);
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, store.CollectGarbage()); // the tombstone, deleted 10 min ago
        Assert.Equal(2, store.Count);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, store.CollectGarbage()); // the value that expired 10 min ago
        Assert.Equal(["a||kept"], store.Snapshot().Select(e => e.Key));
    }

    [Fact]
    public void TheClockNeverGoesBackAndOrdersAfterWhatItObserved()
    {
        var clock = new HybridLogicalClock(7, _time);
        HybridTimestamp a = clock.Now();
        _time.AdjustTime(_time.GetUtcNow().AddMinutes(-5));
        HybridTimestamp b = clock.Now();
        Assert.True(b > a);
        var remote = new HybridTimestamp(a.Ticks + (1000L << HybridTimestamp.LogicalBits), 9);
        clock.Observe(remote);
        Assert.True(clock.Now() > remote);
    }

    [Fact]
    public void ETagsRoundTripAndJunkDoesNotParse()
    {
        var stamp = new HybridTimestamp(123456789, 0xabcdef);
        Assert.True(HybridTimestamp.TryParseETag(stamp.ToETag(), out HybridTimestamp parsed));
        Assert.Equal(stamp, parsed);
        foreach (string junk in new[] { "", "-", "12", "-5", "x-1", "1-", "ffffffffffffffffff-1" })
        {
            Assert.False(HybridTimestamp.TryParseETag(junk, out _), junk);
        }
    }

    [Fact]
    public void KeysAreScopedToTheAppAndSeparatorsAreRefused()
    {
        Assert.Equal("api||k", StateKeys.TryScope("api", "k", out _));
        Assert.Null(StateKeys.TryScope("api", "other||k", out string? error));
        Assert.Contains("can't contain '||'", error, StringComparison.Ordinal);
        Assert.Null(StateKeys.TryScope("api", "", out _));
        Assert.Equal("k", StateKeys.Unscope("api||k"));
    }
}
