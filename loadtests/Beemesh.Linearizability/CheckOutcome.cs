namespace Beemesh.Linearizability;

/// <summary>What the checker concluded about a history (or one key's part of it).</summary>
public enum CheckOutcome
{
    /// <summary>Some order of the operations respects their real-time order and the sequential model.</summary>
    Linearizable,

    /// <summary>No order does: the store broke linearizability (or the history was recorded wrongly).</summary>
    NotLinearizable,

    /// <summary>The search stopped at <see cref="CheckerOptions.MaxSearchSteps"/> before it could decide.</summary>
    Unknown,
}
