using System.Collections.Concurrent;

namespace Beemesh.LoadTests.Scenarios;

/// <summary>The recorders of one scenario: one per step name, plus one for whole invocations.</summary>
internal sealed class StepRecorderSet(string scenarioName, bool discard)
{
    private readonly ConcurrentDictionary<string, StepRecorder> _steps = new(StringComparer.Ordinal);
    private readonly Lock _orderGate = new();
    private readonly List<StepRecorder> _order = [];

    /// <summary>True during warm-up: nothing is kept.</summary>
    public bool Discard { get; } = discard;

    public StepRecorder Invocations { get; } = new(scenarioName);

    public StepRecorder ForStep(string name)
    {
        if (_steps.TryGetValue(name, out StepRecorder? existing))
        {
            return existing;
        }

        lock (_orderGate)
        {
            if (_steps.TryGetValue(name, out existing))
            {
                return existing;
            }

            var created = new StepRecorder(name);
            _order.Add(created);
            _steps[name] = created;
            return created;
        }
    }

    public IReadOnlyList<StepStats> StepStats(TimeSpan duration)
    {
        lock (_orderGate)
        {
            var list = new List<StepStats>(_order.Count);
            foreach (StepRecorder recorder in _order)
            {
                list.Add(recorder.ToStats(duration));
            }

            return list;
        }
    }
}
