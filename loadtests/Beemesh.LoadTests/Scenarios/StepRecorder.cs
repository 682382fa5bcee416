using System.Diagnostics;

namespace Beemesh.LoadTests.Scenarios;

/// <summary>Thread-safe accumulator for one step's (or one scenario's) results.</summary>
internal sealed class StepRecorder(string name)
{
    private readonly Lock _gate = new();
    private readonly LatencyHistogram _latencyNs = new();
    private long _ok;
    private long _fail;
    private long _bytes;
    private string? _firstFailure;

    public string Name { get; } = name;

    public void Record(long startTimestamp, StepResult result)
    {
        long ns = (long)(Stopwatch.GetElapsedTime(startTimestamp).Ticks * 100L);
        lock (_gate)
        {
            _latencyNs.Record(ns);
            if (result.IsError)
            {
                _fail++;
                _firstFailure ??= result.Message;
            }
            else
            {
                _ok++;
                _bytes += result.SizeBytes;
            }
        }
    }

    public StepStats ToStats(TimeSpan duration)
    {
        lock (_gate)
        {
            long count = _ok + _fail;
            double seconds = duration.TotalSeconds;
            return new StepStats(
                Name,
                count,
                _ok,
                _fail,
                seconds > 0 ? count / seconds : 0,
                _bytes,
                LatencyStats.From(_latencyNs),
                _firstFailure);
        }
    }
}
