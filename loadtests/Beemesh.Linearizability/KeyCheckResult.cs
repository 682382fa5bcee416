namespace Beemesh.Linearizability;

/// <summary>The checker's conclusion for one key.</summary>
/// <param name="Key">The key.</param>
/// <param name="Outcome">Linearizable, not, or unknown (search limit).</param>
/// <param name="Operations">Operations of the key that were checked (failed operations and unknown reads are not).</param>
/// <param name="SearchSteps">Steps the search took.</param>
/// <param name="LongestLinearization">
/// For a key that is not linearizable (or unknown): the longest sequence of operations the search
/// could order, in that order; empty for a linearizable key.
/// </param>
/// <param name="Stuck">
/// For a key that is not linearizable: the operations that could come next after
/// <see cref="LongestLinearization"/> by real time, none of which the model allows there.
/// </param>
/// <param name="FinalState">The state after <see cref="LongestLinearization"/>.</param>
public sealed record KeyCheckResult(
    string Key,
    CheckOutcome Outcome,
    int Operations,
    long SearchSteps,
    IReadOnlyList<KvOperation> LongestLinearization,
    IReadOnlyList<KvOperation> Stuck,
    RegisterState FinalState)
{
    /// <summary>A few lines saying why the key failed, or one line for a key that passed.</summary>
    public string Describe()
    {
        string head = $"key {Key}: {Outcome switch
        {
            CheckOutcome.Linearizable => "linearizable",
            CheckOutcome.NotLinearizable => "NOT linearizable",
            _ => "unknown: search limit",
        }} ({Operations} operations, {SearchSteps} search steps)";
        if (Outcome == CheckOutcome.Linearizable)
        {
            return head;
        }

        var lines = new List<string> { head, $"  longest linearization ({LongestLinearization.Count} operations), ending:" };
        lines.AddRange(LongestLinearization.Skip(Math.Max(0, LongestLinearization.Count - 5)).Select(o => "    " + o));
        lines.Add($"  state there: {FinalState}");
        if (Stuck.Count > 0)
        {
            lines.Add("  none of these can come next:");
            lines.AddRange(Stuck.Select(o => "    " + o));
        }

        return string.Join('\n', lines);
    }
}
