using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.Tests.Scenarios;

public sealed class ScenarioRunnerTests
{
    [Fact]
    public void CountsOkFailBytesAndStepsWithoutWarmUp()
    {
        int calls = 0;
        Scenario scenario = Scenario.Create("s", async context =>
            {
                int n = Interlocked.Increment(ref calls);
                StepResult step = await Step.Run("work", context, () =>
                    Task.FromResult(n % 4 == 0 ? Response.Fail("every fourth") : Response.Ok(sizeBytes: 10)));
                return step;
            })
            .WithoutWarmUp()
            .WithLoadSimulations(LoadSimulation.KeepConstant(2, TimeSpan.FromMilliseconds(200)));

        ScenarioStats stats = Assert.Single(ScenarioRunner.Run(scenario));

        StepStats work = stats.GetStep("work");
        Assert.Equal(calls, work.RequestCount);
        Assert.Equal(calls / 4, work.FailCount);
        Assert.Equal(work.OkCount * 10, work.Bytes);
        Assert.Equal("every fourth", work.FirstFailure);
        Assert.Equal(work.RequestCount, stats.Invocations.RequestCount);
        Assert.True(work.Rps > 0);
    }

    [Fact]
    public void ExceptionsBecomeFailures()
    {
        Scenario scenario = Scenario.Create("boom", context =>
                Step.Run("throws", context, () => throw new InvalidOperationException("nope")))
            .WithoutWarmUp()
            .WithLoadSimulations(LoadSimulation.Inject(50, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)));

        ScenarioStats stats = Assert.Single(ScenarioRunner.Run(scenario));

        StepStats step = stats.GetStep("throws");
        Assert.True(step.RequestCount > 0);
        Assert.Equal(0, step.OkCount);
        Assert.Contains("nope", step.FirstFailure, StringComparison.Ordinal);
    }
}
