namespace Beemesh.LoadTests.Scenarios;

/// <summary>Results of one step (or of whole invocations) over the measured part of a run.</summary>
/// <param name="Name">Step name (the scenario name for whole invocations).</param>
/// <param name="RequestCount">Requests finished, ok plus failed.</param>
/// <param name="OkCount">Successful requests.</param>
/// <param name="FailCount">Failed requests.</param>
/// <param name="Rps">Requests per second over the measured duration.</param>
/// <param name="Bytes">Bytes reported by successful requests.</param>
/// <param name="Latency">Latency of all requests, ok and failed.</param>
/// <param name="FirstFailure">The first failure message, to say why; null when none failed.</param>
public sealed record StepStats(
    string Name,
    long RequestCount,
    long OkCount,
    long FailCount,
    double Rps,
    long Bytes,
    LatencyStats Latency,
    string? FirstFailure);
