namespace Beemesh.Linearizability;

/// <summary>The checker's conclusion for a whole history: the worst of its keys'.</summary>
/// <param name="Outcome">NotLinearizable if any key is; else Unknown if any key hit the search limit; else Linearizable.</param>
/// <param name="Keys">Every key's result, ordered by key.</param>
public sealed record CheckResult(CheckOutcome Outcome, IReadOnlyList<KeyCheckResult> Keys)
{
    /// <summary>True when the history is linearizable.</summary>
    public bool IsLinearizable => Outcome == CheckOutcome.Linearizable;

    /// <summary>A summary line, then the explanation for every key that is not linearizable or unknown.</summary>
    public string Describe()
    {
        int bad = Keys.Count(k => k.Outcome == CheckOutcome.NotLinearizable);
        int unknown = Keys.Count(k => k.Outcome == CheckOutcome.Unknown);
        string head = $"{Outcome switch
        {
            CheckOutcome.Linearizable => "linearizable",
            CheckOutcome.NotLinearizable => "NOT linearizable",
            _ => "unknown: search limit",
        }}: {Keys.Count} keys, {Keys.Sum(k => k.Operations)} operations, {bad} keys not linearizable, {unknown} unknown";
        return string.Join('\n', Keys.Where(k => k.Outcome != CheckOutcome.Linearizable).Select(k => k.Describe()).Prepend(head));
    }

    /// <inheritdoc />
    public override string ToString() => Describe();
}
