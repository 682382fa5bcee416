using static Beemesh.Linearizability.KvOperation;

namespace Beemesh.Linearizability.Tests;

/// <summary>Hand-written histories: concurrent ones that are linearizable, and the classic anomalies that are not.</summary>
public sealed class CheckerTests
{
    private const OperationOutcome Ok = OperationOutcome.Ok;
    private const OperationOutcome Mismatch = OperationOutcome.Mismatch;
    private const OperationOutcome Unknown = OperationOutcome.Unknown;

    [Fact]
    public void AnEmptyHistoryIsLinearizable() =>
        Assert.Equal(CheckOutcome.Linearizable, LinearizabilityChecker.Check([]).Outcome);

    [Fact]
    public void OverlappingWritesAndReadsThatSeeEitherOrderAreAccepted()
    {
        // p1 writes a over [0, 100], p2 writes b over [10, 90]; p3's read over [20, 30] sees b, p4's over
        // [40, 120] sees a: only the order  b, read b, a, read a  explains it, and it respects real time.
        KvOperation[] history =
        [
            Write("k", 0, 100, "a", process: 1),
            Write("k", 10, 90, "b", process: 2),
            Read("k", 20, 30, "b", process: 3),
            Read("k", 40, 120, "a", process: 4),
            Read("k", 130, 140, "a", process: 3),
        ];
        CheckResult result = LinearizabilityChecker.Check(history);
        Assert.True(result.IsLinearizable, result.Describe());
    }

    [Fact]
    public void AReadConcurrentWithAWriteMaySeeTheOldOrTheNewValue()
    {
        KvOperation[] history =
        [
            Write("k", 0, 10, "old", process: 1),
            Write("k", 20, 60, "new", process: 1),
            Read("k", 25, 30, "new", process: 2),
            Read("k", 30, 50, "new", process: 3),
            Read("k", 70, 80, "new", process: 2),
        ];
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
        KvOperation[] seesOld =
        [
            Write("k", 0, 10, "old", process: 1),
            Write("k", 20, 60, "new", process: 1),
            Read("k", 25, 30, "old", process: 2),
            Read("k", 70, 80, "new", process: 2),
        ];
        Assert.True(LinearizabilityChecker.Check(seesOld).IsLinearizable);
    }

    [Fact]
    public void AStaleReadIsRejected()
    {
        // The write of "new" returned at 60; a read called at 70 still sees "old".
        KvOperation[] history =
        [
            Write("k", 0, 10, "old", process: 1),
            Write("k", 20, 60, "new", process: 1),
            Read("k", 70, 80, "old", process: 2),
        ];
        CheckResult result = LinearizabilityChecker.Check(history);
        Assert.Equal(CheckOutcome.NotLinearizable, result.Outcome);
        KeyCheckResult key = Assert.Single(result.Keys);
        Assert.Contains(history[2], key.Stuck);
        Assert.Contains("NOT linearizable", result.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void AReadThatGoesBackInTimeAfterAnotherClientSawTheNewValueIsRejected()
    {
        // Both reads overlap the write, but once p2 has seen "new" (returned at 40), p3's later read cannot see "old".
        KvOperation[] history =
        [
            Write("k", 0, 10, "old", process: 1),
            Write("k", 20, 100, "new", process: 1),
            Read("k", 30, 40, "new", process: 2),
            Read("k", 50, 60, "old", process: 3),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);
    }

    [Fact]
    public void ALostUpdateIsRejected()
    {
        // Two clients read the same version and both compare-and-set from it: both cannot succeed.
        KvOperation[] history =
        [
            Write("counter", 0, 10, "0", process: 1),
            Read("counter", 20, 30, "0", "e1", process: 1),
            Read("counter", 20, 30, "0", "e1", process: 2),
            CompareAndSet("counter", 40, 60, "e1", "1", Ok, process: 1),
            CompareAndSet("counter", 45, 65, "e1", "1", Ok, process: 2),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);

        // With the second compare-and-set refused, the same history is fine.
        KvOperation[] fine = [.. history[..4], CompareAndSet("counter", 45, 65, "e1", "1", Mismatch, process: 2)];
        Assert.True(LinearizabilityChecker.Check(fine).IsLinearizable);
    }

    [Fact]
    public void AnAcknowledgedWriteThatDisappearsIsRejected()
    {
        // Two acknowledged, sequential writes; a later read sees the first one's value: the second was lost.
        KvOperation[] history =
        [
            Write("k", 0, 10, "a", process: 1),
            Write("k", 20, 30, "b", process: 2),
            Read("k", 40, 50, "a", process: 3),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);
    }

    [Fact]
    public void ACompareAndSetThatSucceededOnAStaleVersionIsRejected()
    {
        // p1 read version e1; p2 then wrote and p3 saw the new version e2; p1's compare-and-set on e1 succeeded after that.
        KvOperation[] history =
        [
            Write("k", 0, 10, "a", process: 1),
            Read("k", 20, 30, "a", "e1", process: 1),
            Write("k", 40, 50, "b", process: 2),
            Read("k", 60, 70, "b", "e2", process: 3),
            CompareAndSet("k", 80, 90, "e1", "c", Ok, process: 1),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);

        // Even when no one saw e2: a write after the read gives the key a new ETag.
        KvOperation[] unseen = [.. history[..3], CompareAndSet("k", 80, 90, "e1", "c", Ok, process: 1)];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(unseen).Outcome);

        // Refused, it is correct; and had it overlapped the write, it could have gone first.
        KvOperation[] refused = [.. history[..4], CompareAndSet("k", 80, 90, "e1", "c", Mismatch, process: 1)];
        Assert.True(LinearizabilityChecker.Check(refused).IsLinearizable);
        KvOperation[] overlapping = [.. history[..3], CompareAndSet("k", 35, 45, "e1", "c", Ok, process: 1), Read("k", 60, 70, "b", process: 3)];
        Assert.True(LinearizabilityChecker.Check(overlapping).IsLinearizable);
    }

    [Fact]
    public void ACompareAndSetRefusedWhenItsVersionWasCurrentIsRejected()
    {
        KvOperation[] history =
        [
            Write("k", 0, 10, "a", process: 1),
            Read("k", 20, 30, "a", "e1", process: 1),
            CompareAndSet("k", 40, 50, "e1", "b", Mismatch, process: 1),
            Read("k", 60, 70, "a", "e1", process: 2),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);
    }

    [Fact]
    public void AnUnknownWriteMayHaveTakenEffect()
    {
        // The write timed out; a later read sees its value, which only the write can explain.
        KvOperation[] history =
        [
            Write("k", 0, 10, "a", process: 1),
            Write("k", 20, 0, "b", Unknown, process: 2),
            Read("k", 1000, 1010, "b", process: 3),
            Read("k", 1020, 1030, "b", process: 1),
        ];
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void AnUnknownWriteMayNotHaveTakenEffect()
    {
        KvOperation[] history =
        [
            Write("k", 0, 10, "a", process: 1),
            Write("k", 20, 0, "b", Unknown, process: 2),
            Read("k", 1000, 1010, "a", process: 3),
        ];
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void AnUnknownWriteTakesEffectOnceAndNeverBeforeItsCall()
    {
        // Seen, then unseen again: it cannot have taken effect twice.
        KvOperation[] flipFlop =
        [
            Write("k", 0, 10, "a", process: 1),
            Write("k", 20, 0, "b", Unknown, process: 2),
            Read("k", 30, 40, "b", process: 3),
            Read("k", 50, 60, "a", process: 3),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(flipFlop).Outcome);

        // Seen by a read that returned before the write was called.
        KvOperation[] early =
        [
            Write("k", 0, 10, "a", process: 1),
            Read("k", 12, 15, "b", process: 3),
            Write("k", 20, 0, "b", Unknown, process: 2),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(early).Outcome);
    }

    [Fact]
    public void AnUnknownCompareAndSetAppliesOnlyWhereItsVersionIsCurrent()
    {
        KvOperation[] applied =
        [
            Write("k", 0, 10, "a", process: 1),
            Read("k", 20, 30, "a", "e1", process: 1),
            CompareAndSet("k", 40, 0, "e1", "b", Unknown, process: 1),
            Read("k", 100, 110, "b", process: 2),
        ];
        Assert.True(LinearizabilityChecker.Check(applied).IsLinearizable);

        // By the time it was called the version had changed, so its value cannot appear.
        KvOperation[] cannot =
        [
            Write("k", 0, 10, "a", process: 1),
            Read("k", 20, 30, "a", "e1", process: 1),
            Write("k", 32, 35, "x", process: 3),
            CompareAndSet("k", 40, 0, "e1", "b", Unknown, process: 1),
            Read("k", 100, 110, "b", process: 2),
        ];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(cannot).Outcome);
    }

    [Fact]
    public void CreateAndDeleteFollowTheKeysPresence()
    {
        KvOperation[] history =
        [
            Read("k", 0, 5, null, process: 1),
            Create("k", 10, 20, "a", Ok, process: 1),
            Create("k", 15, 25, "b", Mismatch, process: 2),
            Read("k", 30, 40, "a", "e1", process: 2),
            Delete("k", 50, 60, Mismatch, expected: "e0", process: 2),
            Delete("k", 70, 80, Ok, expected: "e1", process: 1),
            Read("k", 90, 95, null, process: 2),
            Delete("k", 100, 110, Ok, process: 2),
            Create("k", 120, 130, "c", Ok, process: 2),
        ];
        CheckResult result = LinearizabilityChecker.Check(history);
        Assert.True(result.IsLinearizable, result.Describe());

        // Two creates cannot both succeed; a read after a delete cannot see the value.
        KvOperation[] twoCreates = [Create("k", 10, 20, "a", Ok, process: 1), Create("k", 15, 25, "b", Ok, process: 2)];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(twoCreates).Outcome);
        KvOperation[] readAfterDelete = [Write("k", 0, 10, "a"), Delete("k", 20, 30), Read("k", 40, 50, "a")];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(readAfterDelete).Outcome);
    }

    [Fact]
    public void FailedOperationsAreIgnoredAndKeysAreCheckedApart()
    {
        KvOperation[] history =
        [
            Write("a", 0, 10, "1"),
            Write("a", 20, 30, "2", OperationOutcome.Failed),
            Read("a", 40, 50, "1"),
            Write("b", 0, 10, "x"),
            Read("b", 20, 30, "y"),
        ];
        CheckResult result = LinearizabilityChecker.Check(history);
        Assert.Equal(CheckOutcome.NotLinearizable, result.Outcome);
        Assert.Equal(["a", "b"], result.Keys.Select(k => k.Key));
        Assert.Equal(CheckOutcome.Linearizable, result.Keys[0].Outcome);
        Assert.Equal(2, result.Keys[0].Operations);
        Assert.Equal(CheckOutcome.NotLinearizable, result.Keys[1].Outcome);
    }

    [Fact]
    public void AnInitialStateCanBeGiven()
    {
        KvOperation[] history = [Read("k", 0, 10, "before", "e0"), CompareAndSet("k", 20, 30, "e0", "after", Ok)];
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);
        var options = new CheckerOptions { InitialState = _ => RegisterState.Present("before", "e0") };
        Assert.True(LinearizabilityChecker.Check(history, options).IsLinearizable);
    }

    [Fact]
    public void TheSearchStopsAtItsLimitAndSaysSo()
    {
        // Twelve concurrent writes and a read of a value none wrote: deciding needs more than 5 steps.
        var history = Enumerable.Range(0, 12).Select(i => Write("k", 0, 100, "v" + i, process: i)).ToList();
        history.Add(Read("k", 200, 210, "nobody"));
        CheckResult limited = LinearizabilityChecker.Check(history, new CheckerOptions { MaxSearchSteps = 5 });
        Assert.Equal(CheckOutcome.Unknown, limited.Outcome);
        Assert.Contains("unknown: search limit", limited.Describe(), StringComparison.Ordinal);
        Assert.Equal(5, limited.Keys[0].SearchSteps);
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history).Outcome);
    }

    [Fact]
    public void MemoizationKeepsManyConcurrentWritesTractable()
    {
        // 16 fully concurrent writes then a read: without memoization this is 16! orders; with it, at most 2^16 sets.
        var history = Enumerable.Range(0, 16).Select(i => Write("k", 0, 100, "v" + i, process: i)).ToList();
        history.Add(Read("k", 200, 210, "v7"));
        CheckResult result = LinearizabilityChecker.Check(history, new CheckerOptions { MaxSearchSteps = 5_000_000 });
        Assert.True(result.IsLinearizable, result.Describe());
        history[^1] = Read("k", 200, 210, "nobody");
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history, new CheckerOptions { MaxSearchSteps = 5_000_000 }).Outcome);
    }

    [Fact]
    public void InconsistentOperationsAreRefusedWithTheirReason()
    {
        var backwards = Write("k", 10, 5, "a");
        Assert.Contains("returns before it is called", Assert.Throws<ArgumentException>(() => LinearizabilityChecker.Check([backwards])).Message, StringComparison.Ordinal);
        var casWithoutEtag = new KvOperation { Key = "k", Kind = OperationKind.CompareAndSet, CallTime = 0, ReturnTime = 1, Outcome = Ok, Value = "v" };
        Assert.Contains("needs an expected ETag", Assert.Throws<ArgumentException>(casWithoutEtag.Validate).Message, StringComparison.Ordinal);
        var mismatchedWrite = Write("k", 0, 1, "v", Mismatch);
        Assert.Throws<ArgumentException>(mismatchedWrite.Validate);
    }
}
