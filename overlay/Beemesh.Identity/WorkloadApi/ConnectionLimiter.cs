using Beemesh.Spiffe.Processes;

namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// Counts open connections in total and per calling process and refuses those past either limit,
/// so one caller (or one process opening thousands of sockets) cannot take the server's descriptors
/// from the others. A caller whose process cannot be identified is refused too. Thread-safe.
/// Used by the Workload API server and by the agent's admin API.
/// </summary>
/// <param name="maxTotal">Open connections allowed in total.</param>
/// <param name="maxPerProcess">Open connections allowed per calling process.</param>
public sealed class ConnectionLimiter(int maxTotal, int maxPerProcess)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, int> _perProcess = [];
    private readonly Dictionary<string, int> _perGroup = new(StringComparer.Ordinal);
    private int _open;
    private long _refusedTotal;
    private long _refusedPerProcess;
    private long _refusedUnidentified;
    private long _refusedGroup;
    private TaskCompletionSource? _changed;

    /// <summary>Connections currently holding a slot.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Refusals because the total limit was reached.</summary>
    public long RefusedTotal => Interlocked.Read(ref _refusedTotal);

    /// <summary>Refusals because the caller's process had reached its limit.</summary>
    public long RefusedPerProcess => Interlocked.Read(ref _refusedPerProcess);

    /// <summary>Refusals because the calling process could not be identified.</summary>
    public long RefusedUnidentified => Interlocked.Read(ref _refusedUnidentified);

    /// <summary>Refusals because the caller's group (see <see cref="TryEnter(CallerProcess?, string?, int, out string?)"/>) was full.</summary>
    public long RefusedGroup => Interlocked.Read(ref _refusedGroup);

    /// <summary>
    /// Completes once <paramref name="condition"/> holds, re-checked after every slot taken, slot
    /// released and refusal counted: for callers (tests, diagnostics) that wait on the counters
    /// without polling them.
    /// </summary>
    public async Task WaitUntilAsync(Func<ConnectionLimiter, bool> condition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(condition);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                _changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                changed = _changed.Task;
            }

            if (condition(this))
            {
                return;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Takes a slot for <paramref name="caller"/>; null (with the reason) when a limit is reached. Dispose the slot when the connection ends.</summary>
    public IDisposable? TryEnter(CallerProcess? caller, out string? refusal) => TryEnter(caller, null, 0, out refusal);

    /// <summary>
    /// Takes a slot for <paramref name="caller"/>, which also counts against <paramref name="group"/>
    /// (at most <paramref name="groupLimit"/> open connections per group, e.g. per identity, so one
    /// workload's many processes cannot use up the total); null (with the reason) when a limit is reached.
    /// </summary>
    public IDisposable? TryEnter(CallerProcess? caller, string? group, int groupLimit, out string? refusal)
    {
        if (caller is null)
        {
            Interlocked.Increment(ref _refusedUnidentified);
            refusal = "the calling process could not be identified";
            Changed();
            return null;
        }

        int pid = caller.ProcessId;
        lock (_gate)
        {
            if (_open >= maxTotal)
            {
                Interlocked.Increment(ref _refusedTotal);
                refusal = $"{maxTotal} connections are open (the limit)";
                SignalLocked();
                return null;
            }

            int mine = _perProcess.GetValueOrDefault(pid);
            if (mine >= maxPerProcess)
            {
                Interlocked.Increment(ref _refusedPerProcess);
                refusal = $"process {pid} already has {maxPerProcess} connections open (the limit per process)";
                SignalLocked();
                return null;
            }

            if (group is not null)
            {
                int inGroup = _perGroup.GetValueOrDefault(group);
                if (inGroup >= groupLimit)
                {
                    Interlocked.Increment(ref _refusedGroup);
                    refusal = $"{group} already has {groupLimit} connections open (the limit for it)";
                    SignalLocked();
                    return null;
                }

                _perGroup[group] = inGroup + 1;
            }

            _perProcess[pid] = mine + 1;
            _open++;
            SignalLocked();
        }

        refusal = null;
        return new Slot(this, pid, group);
    }

    private void Leave(int pid, string? group)
    {
        lock (_gate)
        {
            _open--;
            if (group is not null)
            {
                if (_perGroup.TryGetValue(group, out int inGroup) && inGroup > 1)
                {
                    _perGroup[group] = inGroup - 1;
                }
                else
                {
                    _perGroup.Remove(group);
                }
            }

            if (_perProcess.TryGetValue(pid, out int count) && count > 1)
            {
                _perProcess[pid] = count - 1;
            }
            else
            {
                _perProcess.Remove(pid);
            }

            SignalLocked();
        }
    }

    private void Changed()
    {
        lock (_gate)
        {
            SignalLocked();
        }
    }

    // Wakes waiters; costs nothing while no one waits.
    private void SignalLocked()
    {
        if (_changed is { } changed)
        {
            _changed = null;
            changed.TrySetResult();
        }
    }

    private sealed class Slot(ConnectionLimiter owner, int pid, string? group) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Leave(pid, group);
            }
        }
    }
}
