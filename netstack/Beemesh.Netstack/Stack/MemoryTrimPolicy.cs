namespace Beemesh.Netstack.Stack;

/// <summary>
/// Decides when the stack gives memory back after a burst of flows. Flows are small objects, but a
/// burst of short connections leaves tens of thousands of them in TIME-WAIT at once, and the
/// garbage-collected heap keeps its high-water mark committed after they go. Once the flow count
/// has fallen to half its peak (and by at least <see cref="MinReleased"/> flows), a check is armed a
/// little later so that the burst can end; if the count is still down then, the stack trims: a
/// compacting, decommitting full collection and smaller flow tables. Sans-IO: the caller passes the
/// flow count and the time.
/// </summary>
internal sealed class MemoryTrimPolicy
{
    private int _peak;
    private bool _armed;
    private TimeSpan? _lastTrim;

    /// <summary>Creates a policy.</summary>
    /// <param name="minReleased">Flows that must have gone since the peak before a trim is worth it.</param>
    /// <param name="settle">Wait after the count fell before checking again (the burst may go on).</param>
    /// <param name="minInterval">Least time between two trims, bounding their cost under churn.</param>
    public MemoryTrimPolicy(int minReleased, TimeSpan settle, TimeSpan minInterval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minReleased, 1);
        MinReleased = minReleased;
        Settle = settle;
        MinInterval = minInterval;
    }

    /// <summary>Flows that must have gone since the peak before a trim is worth it.</summary>
    public int MinReleased { get; }

    /// <summary>Wait between the count falling and the check.</summary>
    public TimeSpan Settle { get; }

    /// <summary>Least time between two trims.</summary>
    public TimeSpan MinInterval { get; }

    /// <summary>Highest flow count seen since the last trim.</summary>
    public int Peak => _peak;

    /// <summary>
    /// Notes the current flow count (after each batch). Returns the time to check at when a check
    /// should be armed now: the count fell far enough and no check is pending.
    /// </summary>
    public TimeSpan? Observe(int flows, TimeSpan now)
    {
        if (flows > _peak)
        {
            _peak = flows;
            return null;
        }

        if (_armed || !FellEnough(flows))
        {
            return null;
        }

        _armed = true;
        TimeSpan at = now + Settle;
        if (_lastTrim is { } last && last + MinInterval > at)
        {
            at = last + MinInterval;
        }

        return at;
    }

    /// <summary>The armed check is due: true when the stack should trim now (the count is still down).</summary>
    public bool ShouldTrim(int flows, TimeSpan now)
    {
        _armed = false;
        if (!FellEnough(flows) || (_lastTrim is { } last && now < last + MinInterval))
        {
            return false; // a new burst took the count back up; the next fall arms again
        }

        _peak = flows;
        _lastTrim = now;
        return true;
    }

    /// <summary>Forgets the pending check (the stack is shutting down).</summary>
    public void Disarm() => _armed = false;

    private bool FellEnough(int flows) => _peak - flows >= MinReleased && flows <= _peak / 2;
}
