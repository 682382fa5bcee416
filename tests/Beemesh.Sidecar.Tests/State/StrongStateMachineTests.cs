using System.Text;
using Beemesh.State.Api;
using Beemesh.State.Strong;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>The strong store's replicated state: apply, compare-and-set, transactions, TTL, snapshots.</summary>
public sealed class StrongStateMachineTests
{
    private const long T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static StrongCommand Cmd(params StateOperation[] operations) => new(T0, operations);

    [Fact]
    public void TheETagIsTheLogIndexOfTheLastWrite()
    {
        var state = new StrongStateMachine();
        Assert.Equal(StateWriteStatus.Applied, state.Apply(5, Cmd(StateOperation.Upsert("a||k", Bytes("1")))).Status);
        Assert.Equal("5", state.Get("a||k", T0)!.ETag);
        state.Apply(9, Cmd(StateOperation.Upsert("a||k", Bytes("2"))));
        StateValue value = state.Get("a||k", T0)!;
        Assert.Equal("9", value.ETag);
        Assert.Equal("2", Encoding.UTF8.GetString(value.Value));
        Assert.Equal(9, state.LastApplied);
    }

    [Fact]
    public void AnIndexAlreadyAppliedIsSkipped()
    {
        var state = new StrongStateMachine();
        state.Apply(3, Cmd(StateOperation.Upsert("a||k", Bytes("1"))));
        state.Apply(3, Cmd(StateOperation.Upsert("a||k", Bytes("2"))));
        Assert.Equal("1", Encoding.UTF8.GetString(state.Get("a||k", T0)!.Value));
    }

    [Fact]
    public void AnETagIsACompareAndSet()
    {
        var state = new StrongStateMachine();
        state.Apply(1, Cmd(StateOperation.Upsert("a||k", Bytes("1"))));
        Assert.Equal(StateWriteStatus.ETagMismatch, state.Apply(2, Cmd(StateOperation.Upsert("a||k", Bytes("x"), etag: "7"))).Status);
        Assert.Equal(StateWriteStatus.ETagInvalid, state.Apply(3, Cmd(StateOperation.Upsert("a||k", Bytes("x"), etag: "not-a-version"))).Status);
        Assert.Equal(StateWriteStatus.Applied, state.Apply(4, Cmd(StateOperation.Upsert("a||k", Bytes("2"), etag: "1"))).Status);
        Assert.Equal("4", state.Get("a||k", T0)!.ETag);
        // The old ETag is stale now.
        Assert.Equal(StateWriteStatus.ETagMismatch, state.Apply(5, Cmd(StateOperation.Delete("a||k", etag: "1"))).Status);
        Assert.Equal(StateWriteStatus.ETagMismatch, state.Apply(6, Cmd(StateOperation.Upsert("a||absent", Bytes("x"), etag: "4"))).Status);
        // last-write ignores the ETag.
        Assert.Equal(StateWriteStatus.Applied, state.Apply(7, Cmd(StateOperation.Upsert("a||k", Bytes("3"), etag: "1", concurrency: StateConcurrency.LastWrite))).Status);
    }

    [Fact]
    public void FirstWriteAppliesOnlyToAnAbsentKey()
    {
        var state = new StrongStateMachine();
        Assert.Equal(StateWriteStatus.Applied, state.Apply(1, Cmd(StateOperation.Upsert("a||k", Bytes("1"), concurrency: StateConcurrency.FirstWrite))).Status);
        Assert.Equal(StateWriteStatus.ETagMismatch, state.Apply(2, Cmd(StateOperation.Upsert("a||k", Bytes("2"), concurrency: StateConcurrency.FirstWrite))).Status);
        Assert.Equal("1", Encoding.UTF8.GetString(state.Get("a||k", T0)!.Value));
        state.Apply(3, Cmd(StateOperation.Delete("a||k")));
        Assert.Null(state.Get("a||k", T0));
        Assert.Equal(StateWriteStatus.Applied, state.Apply(4, Cmd(StateOperation.Upsert("a||k", Bytes("3"), concurrency: StateConcurrency.FirstWrite))).Status);
    }

    [Fact]
    public void ATransactionAppliesAllOrNoneAndSeesItsOwnWrites()
    {
        var state = new StrongStateMachine();
        state.Apply(1, Cmd(StateOperation.Upsert("a||x", Bytes("1"))));
        StateWriteResult failed = state.Apply(2, Cmd(
            StateOperation.Upsert("a||y", Bytes("new")),
            StateOperation.Upsert("a||x", Bytes("2"), etag: "99")));
        Assert.Equal(StateWriteStatus.ETagMismatch, failed.Status);
        Assert.Equal("a||x", failed.Key);
        Assert.Null(state.Get("a||y", T0));
        Assert.Equal("1", Encoding.UTF8.GetString(state.Get("a||x", T0)!.Value));

        // A later operation in the same entry checks against the earlier one: a write then first-write of one key fails.
        Assert.Equal(StateWriteStatus.ETagMismatch, state.Apply(3, Cmd(
            StateOperation.Upsert("a||z", Bytes("1")),
            StateOperation.Upsert("a||z", Bytes("2"), concurrency: StateConcurrency.FirstWrite))).Status);
        Assert.Null(state.Get("a||z", T0));

        Assert.Equal(StateWriteStatus.Applied, state.Apply(4, Cmd(
            StateOperation.Upsert("a||y", Bytes("new")),
            StateOperation.Delete("a||x", etag: "1"))).Status);
        Assert.Equal("4", state.Get("a||y", T0)!.ETag);
        Assert.Null(state.Get("a||x", T0));
    }

    [Fact]
    public void TtlExpiresFromTheProposersStampTheSameOnEveryReplica()
    {
        var one = new StrongStateMachine();
        var two = new StrongStateMachine();
        var command = new StrongCommand(T0, [StateOperation.Upsert("a||k", Bytes("1"), timeToLive: TimeSpan.FromSeconds(10))]);
        one.Apply(1, command);
        two.Apply(1, StrongCommand.Decode(command.Encode()));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(T0 + 10_000), one.Get("a||k", T0)!.ExpiresAt);
        Assert.Equal(one.Get("a||k", T0)!.ExpiresAt, two.Get("a||k", T0)!.ExpiresAt);
        Assert.NotNull(one.Get("a||k", T0 + 9_999));
        Assert.Null(one.Get("a||k", T0 + 10_000));
        // Expired means absent for first-write too.
        Assert.Equal(StateWriteStatus.Applied, one.Apply(2, new StrongCommand(T0 + 10_000,
            [StateOperation.Upsert("a||k", Bytes("2"), concurrency: StateConcurrency.FirstWrite)])).Status);
    }

    [Fact]
    public void AWriteOverTheByteBudgetIsRefusedWhole()
    {
        var state = new StrongStateMachine(maxBytes: 200);
        Assert.Equal(StateWriteStatus.Applied, state.Apply(1, Cmd(StateOperation.Upsert("a||k", new byte[50]))).Status);
        Assert.Equal(StateWriteStatus.StoreFull, state.Apply(2, Cmd(StateOperation.Upsert("a||j", new byte[100]))).Status);
        Assert.Null(state.Get("a||j", T0));
        // Replacing with a smaller value frees bytes.
        Assert.Equal(StateWriteStatus.Applied, state.Apply(3, Cmd(StateOperation.Upsert("a||k", new byte[1]))).Status);
        Assert.Equal(StateWriteStatus.Applied, state.Apply(4, Cmd(StateOperation.Upsert("a||j", new byte[50]))).Status);
    }

    [Fact]
    public void ASnapshotRestoresTheSameStateAndDropsExpiredEntries()
    {
        var state = new StrongStateMachine();
        state.Apply(1, Cmd(StateOperation.Upsert("a||k", Bytes("1"))));
        state.Apply(2, Cmd(StateOperation.Upsert("a||t", Bytes("short"), timeToLive: TimeSpan.FromSeconds(1))));
        state.Apply(3, Cmd(StateOperation.Upsert("a||l", Bytes("long"), timeToLive: TimeSpan.FromHours(1))));
        state.Apply(4, new StrongCommand(T0 + 5_000, [StateOperation.Upsert("a||k", Bytes("2"), etag: "1")]));
        byte[] snapshot = state.Snapshot();

        var restored = new StrongStateMachine();
        restored.Restore(snapshot);
        Assert.Equal(4, restored.LastApplied);
        Assert.Equal(2, restored.Count);
        Assert.Equal("4", restored.Get("a||k", T0 + 5_000)!.ETag);
        Assert.Equal("2", Encoding.UTF8.GetString(restored.Get("a||k", T0 + 5_000)!.Value));
        Assert.Null(restored.Get("a||t", T0));
        Assert.Equal(state.Get("a||l", T0), restored.Get("a||l", T0), StateValueComparer.Instance);
        Assert.Equal(state.Bytes - (64 + (4 * 2) + 5), restored.Bytes);
        // It goes on from the restored index: a CAS against the restored ETag applies.
        Assert.Equal(StateWriteStatus.Applied, restored.Apply(5, Cmd(StateOperation.Upsert("a||l", Bytes("x"), etag: "3"))).Status);
    }

    [Fact]
    public void CorruptCommandsAndSnapshotsAreRefused()
    {
        byte[] good = Cmd(StateOperation.Upsert("a||k", Bytes("1"), etag: "3", timeToLive: TimeSpan.FromSeconds(2))).Encode();
        StrongCommand back = StrongCommand.Decode(good);
        Assert.Equal("a||k", back.Operations[0].Key);
        Assert.Equal("3", back.Operations[0].ETag);
        Assert.Equal(TimeSpan.FromSeconds(2), back.Operations[0].TimeToLive);
        Assert.Throws<FormatException>(() => StrongCommand.Decode(good.AsSpan(0, good.Length - 1)));
        Assert.Throws<FormatException>(() => StrongCommand.Decode([.. good, 0]));
        Assert.Throws<FormatException>(() => StrongCommand.Decode([]));
        byte[] wrongVersion = [.. good];
        wrongVersion[0] = 9;
        Assert.Throws<FormatException>(() => StrongCommand.Decode(wrongVersion));

        var state = new StrongStateMachine();
        state.Apply(1, Cmd(StateOperation.Upsert("a||k", Bytes("1"))));
        byte[] snapshot = state.Snapshot();
        Assert.Throws<FormatException>(() => new StrongStateMachine().Restore(snapshot.AsSpan(0, snapshot.Length - 3)));
    }

    private sealed class StateValueComparer : IEqualityComparer<StateValue?>
    {
        public static readonly StateValueComparer Instance = new();

        public bool Equals(StateValue? x, StateValue? y) =>
            x is not null && y is not null && x.ETag == y.ETag && x.ExpiresAt == y.ExpiresAt && x.Value.AsSpan().SequenceEqual(y.Value);

        public int GetHashCode(StateValue? obj) => obj?.ETag.GetHashCode(StringComparison.Ordinal) ?? 0;
    }
}
