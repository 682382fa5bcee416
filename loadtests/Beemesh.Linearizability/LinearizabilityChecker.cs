namespace Beemesh.Linearizability;

/// <summary>
/// Checks a recorded history of key-value operations for linearizability: is there one order of all
/// the operations that respects real time (an operation that returned before another was called comes
/// first) and in which every result is what the sequential store (<see cref="KvRegisterModel"/>) would
/// return? Keys are independent registers, so each key's operations are checked on their own
/// (linearizability is compositional), which keeps the search small.
/// </summary>
public static class LinearizabilityChecker
{
    /// <summary>
    /// Checks <paramref name="history"/> (in any order). Operations that failed are ignored, as are
    /// reads of unknown outcome; writes of unknown outcome may have taken effect at any time after their
    /// call, or never. Throws <see cref="ArgumentException"/> for an operation that is inconsistent in
    /// itself (see <see cref="KvOperation.Validate"/>).
    /// </summary>
    public static CheckResult Check(IEnumerable<KvOperation> history, CheckerOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(history);
        options ??= new CheckerOptions();
        if (options.MaxSearchSteps < 1 || options.MaxDegreeOfParallelism < 1)
        {
            throw new ArgumentException("MaxSearchSteps and MaxDegreeOfParallelism must be at least 1", nameof(options));
        }

        var byKey = new SortedDictionary<string, List<KvOperation>>(StringComparer.Ordinal);
        foreach (KvOperation operation in history)
        {
            ArgumentNullException.ThrowIfNull(operation, nameof(history));
            operation.Validate();
            if (!byKey.TryGetValue(operation.Key, out List<KvOperation>? list))
            {
                byKey.Add(operation.Key, list = []);
            }

            if (operation.Outcome == OperationOutcome.Failed || (operation.Kind == OperationKind.Read && operation.Outcome == OperationOutcome.Unknown))
            {
                continue;
            }

            list.Add(operation);
        }

        var keys = byKey.ToArray();
        var results = new KeyCheckResult[keys.Length];
        Parallel.For(0, keys.Length, new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism, CancellationToken = cancellation }, i =>
        {
            results[i] = CheckKey(keys[i].Key, keys[i].Value, options.InitialState?.Invoke(keys[i].Key) ?? RegisterState.Absent, options.MaxSearchSteps, cancellation);
        });

        CheckOutcome outcome = results.Any(r => r.Outcome == CheckOutcome.NotLinearizable) ? CheckOutcome.NotLinearizable
            : results.Any(r => r.Outcome == CheckOutcome.Unknown) ? CheckOutcome.Unknown
            : CheckOutcome.Linearizable;
        return new CheckResult(outcome, results);
    }

    /// <summary>Checks the operations of one key (all must name <paramref name="key"/>).</summary>
    public static KeyCheckResult CheckKey(string key, IReadOnlyList<KvOperation> operations, RegisterState initial, long maxSearchSteps, CancellationToken cancellation = default)
    {
        foreach (KvOperation operation in operations)
        {
            operation.Validate();
            if (!string.Equals(operation.Key, key, StringComparison.Ordinal))
            {
                throw new ArgumentException($"operation {operation} is not on key {key}", nameof(operations));
            }
        }

        var search = new WingGongSearch(operations);
        WingGongSearch.SearchResult found = search.Run(initial, maxSearchSteps, cancellation);
        if (found.Outcome == CheckOutcome.Linearizable)
        {
            return new KeyCheckResult(key, found.Outcome, operations.Count, found.Steps, [], [], found.State);
        }

        var taken = new bool[operations.Count];
        foreach (int op in found.Longest)
        {
            taken[op] = true;
        }

        // What could come next by real time: every operation left that was called before the earliest return of those left.
        long earliestReturn = long.MaxValue;
        for (int i = 0; i < operations.Count; i++)
        {
            if (!taken[i] && operations[i].Outcome != OperationOutcome.Unknown)
            {
                earliestReturn = Math.Min(earliestReturn, operations[i].ReturnTime);
            }
        }

        var stuck = new List<KvOperation>();
        for (int i = 0; i < operations.Count; i++)
        {
            if (!taken[i] && operations[i].CallTime <= earliestReturn)
            {
                stuck.Add(operations[i]);
            }
        }

        return new KeyCheckResult(key, found.Outcome, operations.Count, found.Steps, found.Longest.Select(i => operations[i]).ToArray(),
            found.Outcome == CheckOutcome.NotLinearizable ? stuck : [], found.State);
    }
}
