namespace Beemesh.LoadTests.Scenarios;

/// <summary>Outcome of one step or one scenario invocation; build it with <see cref="Response"/>.</summary>
/// <param name="IsError">True when the request failed.</param>
/// <param name="StatusCode">Optional protocol status (for example an HTTP status), null when none.</param>
/// <param name="SizeBytes">Bytes moved by the request; summed into the statistics for successes.</param>
/// <param name="Message">Why the request failed, or null.</param>
public sealed record StepResult(bool IsError, string? StatusCode, long SizeBytes, string? Message);
