namespace Beemesh.LoadTests.Scenarios;

/// <summary>Results of one scenario: whole invocations and each step.</summary>
/// <param name="ScenarioName">The scenario's name.</param>
/// <param name="Duration">Measured duration (load phases, warm-up excluded).</param>
/// <param name="Invocations">Statistics of whole scenario invocations.</param>
/// <param name="Steps">Statistics per step, in the order steps first ran.</param>
public sealed record ScenarioStats(
    string ScenarioName,
    TimeSpan Duration,
    StepStats Invocations,
    IReadOnlyList<StepStats> Steps)
{
    /// <summary>The statistics of the named step; throws when the step never ran.</summary>
    public StepStats GetStep(string name)
    {
        foreach (StepStats step in Steps)
        {
            if (step.Name == name)
            {
                return step;
            }
        }

        throw new KeyNotFoundException($"Step '{name}' did not run in scenario '{ScenarioName}'.");
    }
}
