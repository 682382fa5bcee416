namespace Beemesh.State.Eventual;

/// <summary>
/// One replica's hybrid logical clock. Every reading is later than every earlier reading of this
/// clock and every reading it has <see cref="Observe"/>d from other replicas, and stays within the
/// logical counter's reach of the physical clock (<see cref="TimeProvider"/>), so last-writer-wins
/// picks the write that happened last in real time whenever the clocks are roughly in sync, and a
/// causally later write always wins whatever the clocks say. Thread-safe.
/// </summary>
public sealed class HybridLogicalClock
{
    private readonly TimeProvider _time;
    private long _last;

    /// <summary>Creates the clock of <paramref name="replica"/>.</summary>
    public HybridLogicalClock(ulong replica, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        Replica = replica;
        _time = time;
    }

    /// <summary>The replica whose writes this clock stamps.</summary>
    public ulong Replica { get; }

    /// <summary>A new reading for a local write: max(last + 1, physical now).</summary>
    public HybridTimestamp Now()
    {
        long physical = _time.GetUtcNow().ToUnixTimeMilliseconds() << HybridTimestamp.LogicalBits;
        while (true)
        {
            long last = Volatile.Read(ref _last);
            long next = Math.Max(last + 1, physical);
            if (Interlocked.CompareExchange(ref _last, next, last) == last)
            {
                return new HybridTimestamp(next, Replica);
            }
        }
    }

    /// <summary>Takes in a reading from another replica: later local readings order after it.</summary>
    public void Observe(HybridTimestamp remote)
    {
        while (true)
        {
            long last = Volatile.Read(ref _last);
            if (remote.Ticks <= last || Interlocked.CompareExchange(ref _last, remote.Ticks, last) == last)
            {
                return;
            }
        }
    }
}
