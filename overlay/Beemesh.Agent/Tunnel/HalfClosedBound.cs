namespace Beemesh.Agent.Tunnel;

/// <summary>
/// How long a relayed flow may stay half-closed: the first of its two directions to end arms a
/// timer of <see cref="Timeout"/>; when the other direction ends first the timer is disarmed, else
/// the cut runs, once. Shared by the tunnel port's TCP relay and its QUIC relay (the cut closes their
/// own sockets or streams); sans-IO, its clock injected.
/// </summary>
/// <remarks>
/// The mesh's tunnels carry TLS, which has no half-close: when one side ends, the other normally
/// ends at once. One that does not is a caller whose process was stopped after its sidecar closed
/// for want of its keep-alive answers (its kernel still acknowledges everything, so no TCP bound
/// applies), and the relay would hold the flow's sockets for ever.
/// </remarks>
public sealed class HalfClosedBound : IDisposable
{
    private const int Open = 0;
    private const int HalfClosed = 1;
    private const int Closed = 2;
    private const int Cut = 3;

    private readonly Action _cut;
    private readonly ITimer _timer;
    private int _state;

    /// <summary>
    /// A bound of <paramref name="timeout"/> on <paramref name="time"/>'s clock; <paramref name="cut"/>
    /// ends both directions (on a timer thread; it must not throw).
    /// </summary>
    public HalfClosedBound(TimeSpan timeout, TimeProvider time, Action cut)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(time);
        _cut = cut ?? throw new ArgumentNullException(nameof(cut));
        Timeout = timeout;
        _timer = time.CreateTimer(static self => ((HalfClosedBound)self!).Fire(), this, System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
    }

    /// <summary>The longest a flow may stay half-closed.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Whether the flow was cut for staying half-closed past <see cref="Timeout"/>.</summary>
    public bool WasCut => Volatile.Read(ref _state) == Cut;

    /// <summary>
    /// One direction ended (its end is about to be passed on): the first call arms the timer, the
    /// second disarms it. Call it before passing the end on, so whoever sees it sees the timer armed.
    /// Calls after a cut or after both ends do nothing.
    /// </summary>
    public void DirectionEnded()
    {
        if (Interlocked.CompareExchange(ref _state, HalfClosed, Open) == Open)
        {
            _timer.Change(Timeout, System.Threading.Timeout.InfiniteTimeSpan);
        }
        else if (Interlocked.CompareExchange(ref _state, Closed, HalfClosed) == HalfClosed)
        {
            _timer.Change(System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Disarms the timer: the flow is over (a cut in progress still completes).</summary>
    public void Dispose()
    {
        Interlocked.CompareExchange(ref _state, Closed, Open);
        Interlocked.CompareExchange(ref _state, Closed, HalfClosed);
        _timer.Dispose();
    }

    private void Fire()
    {
        if (Interlocked.CompareExchange(ref _state, Cut, HalfClosed) == HalfClosed)
        {
            _cut();
        }
    }
}
