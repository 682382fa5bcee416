namespace Beemesh.LoadTests.Scenarios;

/// <summary>One phase of load; a scenario runs its phases one after another.</summary>
public sealed class LoadSimulation
{
    private LoadSimulation(LoadSimulationKind kind, int amount, TimeSpan interval, TimeSpan during)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        ArgumentOutOfRangeException.ThrowIfLessThan(during, TimeSpan.Zero);
        Kind = kind;
        Amount = amount;
        Interval = interval;
        During = during;
    }

    /// <summary>What this phase does.</summary>
    public LoadSimulationKind Kind { get; }

    /// <summary>Invocations per <see cref="Interval"/> (Inject) or concurrent copies (KeepConstant); 0 for Pause.</summary>
    public int Amount { get; }

    /// <summary>Injection interval (Inject only).</summary>
    public TimeSpan Interval { get; }

    /// <summary>Length of the phase.</summary>
    public TimeSpan During { get; }

    /// <summary>Starts <paramref name="rate"/> invocations every <paramref name="interval"/>, spread evenly, for <paramref name="during"/>.</summary>
    public static LoadSimulation Inject(int rate, TimeSpan interval, TimeSpan during)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        return new LoadSimulation(LoadSimulationKind.Inject, rate, interval, during);
    }

    /// <summary>Keeps <paramref name="copies"/> invocations running back to back for <paramref name="during"/>.</summary>
    public static LoadSimulation KeepConstant(int copies, TimeSpan during) =>
        new(LoadSimulationKind.KeepConstant, copies, TimeSpan.Zero, during);

    /// <summary>Runs nothing for <paramref name="during"/>.</summary>
    public static LoadSimulation Pause(TimeSpan during) =>
        new(LoadSimulationKind.Pause, 0, TimeSpan.Zero, during);

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        LoadSimulationKind.Inject => $"inject {Amount}/{Interval.TotalSeconds:0.###}s for {During.TotalSeconds:0.###}s",
        LoadSimulationKind.KeepConstant => $"keep constant {Amount} for {During.TotalSeconds:0.###}s",
        _ => $"pause {During.TotalSeconds:0.###}s",
    };
}
