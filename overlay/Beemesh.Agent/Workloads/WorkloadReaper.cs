using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Attestation;

namespace Beemesh.Agent.Workloads;

/// <summary>
/// Drops, every <see cref="AgentOptions.ReapInterval"/>, the registrations whose process is gone
/// (a workload killed without unregistering): its name stops resolving, its pid stops attesting,
/// and the workload watch tells every sidecar, which closes the departed caller's live flows.
/// </summary>
internal sealed class WorkloadReaper : IDisposable
{
    private readonly WorkloadRegistry _registry;
    private readonly RegisteredWorkloads _attestor;
    private readonly AgentMetrics _metrics;
    private readonly ITimer _timer;
    private int _running;
    private long _reaped;

    public WorkloadReaper(WorkloadRegistry registry, RegisteredWorkloads attestor, AgentMetrics metrics, TimeProvider time, TimeSpan interval)
    {
        _registry = registry;
        _attestor = attestor;
        _metrics = metrics;
        _timer = time.CreateTimer(static state => ((WorkloadReaper)state!).Reap(), this, interval, interval);
    }

    /// <summary>Registrations dropped so far.</summary>
    public long Reaped => Interlocked.Read(ref _reaped);

    /// <summary>One pass; returns the registrations dropped.</summary>
    public List<WorkloadRecord> Reap()
    {
        // A pass slower than the interval must not overlap the next one.
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            return [];
        }

        try
        {
            List<WorkloadRecord> gone = _registry.Reap();
            foreach (WorkloadRecord record in gone)
            {
                if (!_registry.IsPidRegistered(record.Pid))
                {
                    _attestor.Unregister(record.Pid);
                }

                _metrics.Mesh.Depart(record.Id);
            }

            Interlocked.Add(ref _reaped, gone.Count);
            return gone;
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _timer.Dispose();
}
