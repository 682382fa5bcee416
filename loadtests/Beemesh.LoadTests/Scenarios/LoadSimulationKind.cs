namespace Beemesh.LoadTests.Scenarios;

/// <summary>How a <see cref="LoadSimulation"/> drives its scenario.</summary>
public enum LoadSimulationKind
{
    /// <summary>Open model: start a fixed number of invocations per interval, whatever the latency.</summary>
    Inject,

    /// <summary>Closed model: a fixed number of copies, each starting its next invocation when the last one ends.</summary>
    KeepConstant,

    /// <summary>Run nothing for the duration.</summary>
    Pause,
}
