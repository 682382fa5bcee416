namespace Beemesh.LoadTests.Scenarios;

/// <summary>
/// What one scenario invocation receives. <see cref="Step.Run"/> records its timings here.
/// </summary>
public sealed class ScenarioContext
{
    internal ScenarioContext(string scenarioName, int copyNumber, long invocationNumber, StepRecorderSet steps, CancellationToken cancellationToken)
    {
        ScenarioName = scenarioName;
        CopyNumber = copyNumber;
        InvocationNumber = invocationNumber;
        Steps = steps;
        ScenarioCancellationToken = cancellationToken;
    }

    /// <summary>The scenario's name.</summary>
    public string ScenarioName { get; }

    /// <summary>Which concurrent copy runs this invocation (KeepConstant), or -1 for injected invocations.</summary>
    public int CopyNumber { get; }

    /// <summary>Sequence number of this invocation within the scenario, from 0.</summary>
    public long InvocationNumber { get; }

    /// <summary>Cancelled when the scenario's time is up or the run is aborted.</summary>
    public CancellationToken ScenarioCancellationToken { get; }

    /// <summary>Where step statistics go; null recorders during warm-up.</summary>
    internal StepRecorderSet Steps { get; }
}
