namespace Beemesh.LoadTests.Scenarios;

/// <summary>
/// A named unit of load: a function run over and over under a sequence of load simulations.
/// Shaped like NBomber's scenario builder so NBomber can replace <see cref="ScenarioRunner"/> later.
/// </summary>
public sealed class Scenario
{
    private Scenario(
        string name,
        Func<ScenarioContext, Task<StepResult>> run,
        IReadOnlyList<LoadSimulation> simulations,
        TimeSpan warmUp,
        Func<ScenarioInitContext, Task>? init,
        Func<ScenarioInitContext, Task>? clean)
    {
        Name = name;
        RunFunc = run;
        LoadSimulations = simulations;
        WarmUpDuration = warmUp;
        Init = init;
        Clean = clean;
    }

    /// <summary>The scenario's name, used in the statistics.</summary>
    public string Name { get; }

    /// <summary>The load phases, run in order. Default: one copy for 10 s.</summary>
    public IReadOnlyList<LoadSimulation> LoadSimulations { get; }

    /// <summary>How long the first phase's shape runs before measuring starts (default 3 s, as NBomber).</summary>
    public TimeSpan WarmUpDuration { get; }

    internal Func<ScenarioContext, Task<StepResult>> RunFunc { get; }

    internal Func<ScenarioInitContext, Task>? Init { get; }

    internal Func<ScenarioInitContext, Task>? Clean { get; }

    /// <summary>Creates a scenario that runs <paramref name="run"/> once per invocation.</summary>
    public static Scenario Create(string name, Func<ScenarioContext, Task<StepResult>> run)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(run);
        return new Scenario(
            name,
            run,
            [LoadSimulation.KeepConstant(1, TimeSpan.FromSeconds(10))],
            TimeSpan.FromSeconds(3),
            null,
            null);
    }

    /// <summary>Replaces the load phases.</summary>
    public Scenario WithLoadSimulations(params LoadSimulation[] simulations)
    {
        ArgumentNullException.ThrowIfNull(simulations);
        if (simulations.Length == 0)
        {
            throw new ArgumentException("At least one load simulation is needed.", nameof(simulations));
        }

        return new Scenario(Name, RunFunc, [.. simulations], WarmUpDuration, Init, Clean);
    }

    /// <summary>Sets the warm-up, during which invocations run but are not counted.</summary>
    public Scenario WithWarmUpDuration(TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(duration, TimeSpan.Zero);
        return new Scenario(Name, RunFunc, LoadSimulations, duration, Init, Clean);
    }

    /// <summary>Disables the warm-up.</summary>
    public Scenario WithoutWarmUp() => WithWarmUpDuration(TimeSpan.Zero);

    /// <summary>Runs <paramref name="init"/> once before the warm-up (open connections, seed data).</summary>
    public Scenario WithInit(Func<ScenarioInitContext, Task> init) =>
        new(Name, RunFunc, LoadSimulations, WarmUpDuration, init, Clean);

    /// <summary>Runs <paramref name="clean"/> once after the last phase, also when a phase failed.</summary>
    public Scenario WithClean(Func<ScenarioInitContext, Task> clean) =>
        new(Name, RunFunc, LoadSimulations, WarmUpDuration, Init, clean);
}
