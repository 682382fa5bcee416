using System.Diagnostics;

namespace Beemesh.LoadTests.Scenarios;

/// <summary>Runs scenarios concurrently and returns their statistics.</summary>
public static class ScenarioRunner
{
    /// <summary>Runs every scenario at the same time and waits for all of them.</summary>
    public static IReadOnlyList<ScenarioStats> Run(params Scenario[] scenarios) =>
        RunAsync(CancellationToken.None, scenarios).GetAwaiter().GetResult();

    /// <summary>Runs every scenario at the same time; <paramref name="cancellationToken"/> ends all phases early.</summary>
    public static async Task<IReadOnlyList<ScenarioStats>> RunAsync(CancellationToken cancellationToken, params Scenario[] scenarios)
    {
        ArgumentNullException.ThrowIfNull(scenarios);
        var tasks = new Task<ScenarioStats>[scenarios.Length];
        for (int i = 0; i < scenarios.Length; i++)
        {
            Scenario scenario = scenarios[i];
            tasks[i] = Task.Run(() => RunOneAsync(scenario, cancellationToken), CancellationToken.None);
        }

        return await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private static async Task<ScenarioStats> RunOneAsync(Scenario scenario, CancellationToken cancellationToken)
    {
        var initContext = new ScenarioInitContext(scenario.Name, cancellationToken);
        if (scenario.Init is not null)
        {
            await scenario.Init(initContext).ConfigureAwait(false);
        }

        try
        {
            long invocation = 0;
            if (scenario.WarmUpDuration > TimeSpan.Zero)
            {
                var warmUp = new StepRecorderSet(scenario.Name, discard: true);
                LoadSimulation first = scenario.LoadSimulations[0];
                LoadSimulation shape = first.Kind == LoadSimulationKind.Inject
                    ? LoadSimulation.Inject(first.Amount, first.Interval, scenario.WarmUpDuration)
                    : LoadSimulation.KeepConstant(Math.Max(1, first.Amount), scenario.WarmUpDuration);
                await RunPhaseAsync(scenario, shape, warmUp, () => invocation++, cancellationToken).ConfigureAwait(false);
            }

            var recorders = new StepRecorderSet(scenario.Name, discard: false);
            long measured = 0;
            long start = Stopwatch.GetTimestamp();
            foreach (LoadSimulation phase in scenario.LoadSimulations)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }

                await RunPhaseAsync(scenario, phase, recorders, () => measured++, cancellationToken).ConfigureAwait(false);
            }

            TimeSpan duration = Stopwatch.GetElapsedTime(start);
            return new ScenarioStats(scenario.Name, duration, recorders.Invocations.ToStats(duration), recorders.StepStats(duration));
        }
        finally
        {
            if (scenario.Clean is not null)
            {
                await scenario.Clean(initContext).ConfigureAwait(false);
            }
        }
    }

    private static async Task RunPhaseAsync(
        Scenario scenario,
        LoadSimulation phase,
        StepRecorderSet recorders,
        Func<long> nextInvocation,
        CancellationToken cancellationToken)
    {
        using var phaseCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        phaseCts.CancelAfter(phase.During);
        CancellationToken token = phaseCts.Token;
        var counterGate = new Lock();
        long Next()
        {
            lock (counterGate)
            {
                return nextInvocation();
            }
        }

        switch (phase.Kind)
        {
            case LoadSimulationKind.Pause:
                try
                {
                    await Task.Delay(phase.During, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                break;

            case LoadSimulationKind.KeepConstant:
                var copies = new Task[phase.Amount];
                for (int copy = 0; copy < copies.Length; copy++)
                {
                    int copyNumber = copy;
                    copies[copy] = Task.Run(
                        async () =>
                        {
                            while (!token.IsCancellationRequested)
                            {
                                await InvokeAsync(scenario, copyNumber, Next(), recorders, token).ConfigureAwait(false);
                            }
                        },
                        CancellationToken.None);
                }

                await Task.WhenAll(copies).ConfigureAwait(false);
                break;

            case LoadSimulationKind.Inject:
                var running = new List<Task>();
                if (phase.Amount > 0)
                {
                    // Spread the invocations of each interval evenly; deadlines are absolute so
                    // a late timer catches up instead of drifting.
                    long periodTicks = Math.Max(1, phase.Interval.Ticks / phase.Amount);
                    long begin = Stopwatch.GetTimestamp();
                    for (long n = 0; !token.IsCancellationRequested; n++)
                    {
                        var due = TimeSpan.FromTicks(n * periodTicks);
                        TimeSpan wait = due - Stopwatch.GetElapsedTime(begin);
                        if (wait > TimeSpan.Zero)
                        {
                            try
                            {
                                await Task.Delay(wait, token).ConfigureAwait(false);
                            }
                            catch (OperationCanceledException)
                            {
                                break;
                            }
                        }

                        running.Add(InvokeAsync(scenario, -1, Next(), recorders, token));
                        if (running.Count >= 4096)
                        {
                            running.RemoveAll(static t => t.IsCompleted);
                        }
                    }
                }
                else
                {
                    try
                    {
                        await Task.Delay(phase.During, cancellationToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }

                await Task.WhenAll(running).ConfigureAwait(false);
                break;
        }
    }

    private static async Task InvokeAsync(Scenario scenario, int copy, long invocation, StepRecorderSet recorders, CancellationToken token)
    {
        var context = new ScenarioContext(scenario.Name, copy, invocation, recorders, token);
        long start = Stopwatch.GetTimestamp();
        StepResult result;
        try
        {
            result = await scenario.RunFunc(context).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The phase ended mid-request: not a failure of the system under test.
            return;
        }
        catch (Exception ex)
        {
            result = Response.Fail($"{ex.GetType().Name}: {ex.Message}");
        }

        if (!recorders.Discard)
        {
            recorders.Invocations.Record(start, result);
        }
    }
}
