using System.Diagnostics;

namespace Beemesh.Linearizability;

/// <summary>
/// Collects the operations of concurrent clients as they complete (thread-safe), with call and
/// return times from <see cref="Now"/> (<see cref="Stopwatch.GetTimestamp"/>: monotonic and shared
/// by all threads and, on Linux, all processes of the machine).
/// </summary>
public sealed class HistoryRecorder
{
    private readonly List<KvOperation> _operations = [];
    private readonly Lock _lock = new();

    /// <summary>The current time on the history's clock; take it just before sending a request and just after its answer.</summary>
    public static long Now => Stopwatch.GetTimestamp();

    /// <summary>Adds a completed operation (its id becomes its position in the history).</summary>
    public void Record(KvOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        operation.Validate();
        lock (_lock)
        {
            _operations.Add(operation with { Id = _operations.Count + 1 });
        }
    }

    /// <summary>The operations recorded so far.</summary>
    public IReadOnlyList<KvOperation> Operations
    {
        get
        {
            lock (_lock)
            {
                return _operations.ToArray();
            }
        }
    }
}
