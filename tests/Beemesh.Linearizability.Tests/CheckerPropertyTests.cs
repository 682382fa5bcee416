using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Beemesh.Linearizability.Tests;

/// <summary>
/// Properties over generated histories: what a sequential execution produced is always accepted; a
/// read changed to a value no one wrote is always rejected; and any changed read gets the same
/// verdict as trying every order (small histories).
/// </summary>
public sealed class CheckerPropertyTests
{
    private static Arbitrary<int> Seeds => Arb.From(Gen.Choose(0, int.MaxValue));

    [Property(MaxTest = 500)]
    public Property SequentialExecutionsWithOverlappingWindowsAreAccepted() =>
        Prop.ForAll(Seeds, seed =>
        {
            List<KvOperation> history = SequentialHistory.Generate(seed);
            CheckResult result = LinearizabilityChecker.Check(history);
            return result.IsLinearizable.Label($"seed {seed}: {result.Describe()}");
        });

    [Property(MaxTest = 300)]
    public Property AReadOfAValueNoOneWroteIsRejected() =>
        Prop.ForAll(Seeds, seed =>
        {
            List<KvOperation> history = SequentialHistory.Generate(seed);
            int[] reads = ReadsThatFound(history);
            if (reads.Length == 0)
            {
                return true.Label("no read found a value");
            }

            int at = reads[new Random(seed).Next(reads.Length)];
            history[at] = history[at] with { Value = "never-written" };
            return (LinearizabilityChecker.Check(history).Outcome == CheckOutcome.NotLinearizable).Label($"seed {seed}, read #{history[at].Id}");
        });

    [Property(MaxTest = 400)]
    public Property AChangedReadIsRejectedExactlyWhenNoOrderExplainsIt() =>
        Prop.ForAll(Seeds, seed =>
        {
            var random = new Random(seed);
            List<KvOperation> history = SequentialHistory.Generate(seed, maxOperations: 8, maxKeys: 1);
            int[] reads = [.. Enumerable.Range(0, history.Count).Where(i => history[i].Kind == OperationKind.Read && history[i].Outcome == OperationOutcome.Ok)];
            if (reads.Length == 0)
            {
                return true.Label("no read");
            }

            // Another value that was written (or absent), with or without its ETag.
            int at = reads[random.Next(reads.Length)];
            string?[] values = [null, .. history.Where(o => o.Value is not null && o.Kind != OperationKind.Read).Select(o => o.Value)];
            string? value = values[random.Next(values.Length)];
            history[at] = history[at] with { Value = value, ResultEtag = value is null || random.Next(2) == 0 ? null : history[at].ResultEtag };
            bool expected = BruteForce.IsLinearizable(history);
            bool actual = LinearizabilityChecker.Check(history).IsLinearizable;
            return (expected == actual).Label($"seed {seed}: brute force says {expected}, the search {actual}")
                .Classify(!expected, "rejected").Classify(expected, "accepted");
        });

    [Property(MaxTest = 300)]
    public Property TheSearchAgreesWithTryingEveryOrderOnUnalteredHistories() =>
        Prop.ForAll(Seeds, seed =>
        {
            List<KvOperation> history = SequentialHistory.Generate(seed, maxOperations: 8, maxKeys: 1);
            return (BruteForce.IsLinearizable(history) && LinearizabilityChecker.Check(history).IsLinearizable).Label($"seed {seed}");
        });

    [Fact]
    public void ChangedReadsAreSometimesRejectedAndSometimesExplained()
    {
        // The comparison above is not vacuous: over fixed seeds both verdicts occur.
        int rejected = 0, accepted = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var random = new Random(seed);
            List<KvOperation> history = SequentialHistory.Generate(seed, maxOperations: 8, maxKeys: 1);
            int[] reads = ReadsThatFound(history);
            if (reads.Length == 0)
            {
                continue;
            }

            int at = reads[random.Next(reads.Length)];
            string[] values = [.. history.Where(o => o.Value is not null && o.Kind != OperationKind.Read && o.Value != history[at].Value).Select(o => o.Value!)];
            if (values.Length == 0)
            {
                continue;
            }

            history[at] = history[at] with { Value = values[random.Next(values.Length)], ResultEtag = null };
            bool verdict = LinearizabilityChecker.Check(history).IsLinearizable;
            Assert.Equal(BruteForce.IsLinearizable(history), verdict);
            _ = verdict ? accepted++ : rejected++;
        }

        Assert.True(rejected > 20 && accepted > 20, $"rejected {rejected}, accepted {accepted}");
    }

    [Fact]
    public void LongConcurrentHistoriesAreDecided()
    {
        // Twice 3,000 operations over up to 3 keys each, windows up to 5 operations wide on each side.
        for (int seed = 1; seed <= 3; seed++)
        {
            List<KvOperation> history = SequentialHistory.Generate(seed, maxOperations: 3_000, maxKeys: 3, maxSpread: 500, minOperations: 3_000);
            history.AddRange(SequentialHistory.Generate(seed + 100, maxOperations: 3_000, maxKeys: 3, maxSpread: 500, minOperations: 3_000).Select(o => o with { Key = "other-" + o.Key }));
            CheckResult result = LinearizabilityChecker.Check(history);
            Assert.True(result.IsLinearizable, result.Describe());
        }
    }

    private static int[] ReadsThatFound(List<KvOperation> history) =>
        [.. Enumerable.Range(0, history.Count).Where(i => history[i].Kind == OperationKind.Read && history[i].Outcome == OperationOutcome.Ok && history[i].Value is not null)];
}
