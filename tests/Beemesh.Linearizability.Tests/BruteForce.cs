namespace Beemesh.Linearizability.Tests;

/// <summary>
/// The definition of linearizability, checked by trying every order of a small history's operations
/// that respects real time: the oracle the search is compared against.
/// </summary>
internal static class BruteForce
{
    internal static bool IsLinearizable(IReadOnlyList<KvOperation> history)
    {
        foreach (var key in history.Where(Counts).GroupBy(o => o.Key, StringComparer.Ordinal))
        {
            KvOperation[] ops = [.. key];
            if (!Extend(ops, new bool[ops.Length], 0, RegisterState.Absent))
            {
                return false;
            }
        }

        return true;
    }

    private static bool Counts(KvOperation o) =>
        o.Outcome != OperationOutcome.Failed && !(o.Kind == OperationKind.Read && o.Outcome == OperationOutcome.Unknown);

    private static long Returned(KvOperation o) => o.Outcome == OperationOutcome.Unknown ? long.MaxValue : o.ReturnTime;

    private static bool Extend(KvOperation[] ops, bool[] done, int taken, RegisterState state)
    {
        if (taken == ops.Length)
        {
            return true;
        }

        for (int i = 0; i < ops.Length; i++)
        {
            // i may come next unless some operation not yet taken returned before i was called.
            if (done[i] || Enumerable.Range(0, ops.Length).Any(j => !done[j] && j != i && Returned(ops[j]) < ops[i].CallTime))
            {
                continue;
            }

            // An unknown operation may also never take effect.
            if (ops[i].Outcome == OperationOutcome.Unknown)
            {
                done[i] = true;
                bool skipped = Extend(ops, done, taken + 1, state);
                done[i] = false;
                if (skipped)
                {
                    return true;
                }
            }

            if (KvRegisterModel.Step(state, ops[i], out RegisterState next))
            {
                done[i] = true;
                bool found = Extend(ops, done, taken + 1, next);
                done[i] = false;
                if (found)
                {
                    return true;
                }
            }
        }

        return false;
    }
}
