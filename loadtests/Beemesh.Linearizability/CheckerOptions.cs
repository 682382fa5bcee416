namespace Beemesh.Linearizability;

/// <summary>Bounds and starting point of a check.</summary>
public sealed class CheckerOptions
{
    /// <summary>
    /// Search steps (an operation tried or taken back) allowed per key before the key's outcome is
    /// <see cref="CheckOutcome.Unknown"/> ("search limit"); default 20,000,000 (seconds, not hours).
    /// </summary>
    public long MaxSearchSteps { get; init; } = 20_000_000;

    /// <summary>Keys checked at once (each key's search is single-threaded); default 1.</summary>
    public int MaxDegreeOfParallelism { get; init; } = 1;

    /// <summary>The state of a key before the history starts; default: absent.</summary>
    public Func<string, RegisterState>? InitialState { get; init; }
}
