using System.Diagnostics;

namespace Beemesh.LoadTests.Scenarios;

/// <summary>Runs and times one named step inside a scenario invocation.</summary>
public static class Step
{
    /// <summary>
    /// Runs <paramref name="run"/>, records its latency and outcome under <paramref name="name"/>,
    /// and returns its result. An exception becomes a failed result (and is recorded as one),
    /// except cancellation of the scenario, which propagates.
    /// </summary>
    public static async Task<StepResult> Run(string name, ScenarioContext context, Func<Task<StepResult>> run)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(run);
        long start = Stopwatch.GetTimestamp();
        StepResult result;
        try
        {
            result = await run().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.ScenarioCancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            result = Response.Fail($"{ex.GetType().Name}: {ex.Message}");
        }

        if (!context.Steps.Discard)
        {
            context.Steps.ForStep(name).Record(start, result);
        }

        return result;
    }
}
