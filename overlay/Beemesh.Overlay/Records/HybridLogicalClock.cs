namespace Beemesh.Overlay.Records;

/// <summary>
/// A hybrid logical clock: timestamps stay close to physical time, never go backwards and always
/// follow every timestamp received, so a record version is newer than any it causally succeeds.
/// </summary>
public sealed class HybridLogicalClock
{
    private HlcTimestamp _last;

    /// <summary>The last timestamp issued or observed.</summary>
    public HlcTimestamp Last => _last;

    /// <summary>A timestamp for a local event at physical time <paramref name="physical"/>.</summary>
    public HlcTimestamp Now(long physical)
    {
        _last = physical > _last.Physical ? new HlcTimestamp(physical, 0) : new HlcTimestamp(_last.Physical, _last.Logical + 1);
        return _last;
    }

    /// <summary>Merges a received timestamp, so later local events order after it.</summary>
    public void Observe(HlcTimestamp remote, long physical)
    {
        long top = Math.Max(Math.Max(_last.Physical, remote.Physical), physical);
        int logical = top == _last.Physical && top == remote.Physical ? Math.Max(_last.Logical, remote.Logical) + 1
            : top == _last.Physical ? _last.Logical + 1
            : top == remote.Physical ? remote.Logical + 1
            : 0;
        _last = new HlcTimestamp(top, logical);
    }
}
