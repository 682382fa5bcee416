namespace Beemesh.Agent.Mesh;

/// <summary>
/// Runs a sync's pass when something it depends on changes rather than on a short timer: the owner
/// calls <see cref="Request"/> from its change events, and the pass starts at once, or after the one
/// running. Requests made while a pass runs are taken together by one next pass, and that pass starts
/// no sooner than the last one took after it ended, so the passes take at most half of the time
/// however many changes arrive (a burst costs a few passes, not one each). A pass also runs every
/// sweep interval, on the given clock, for what raises no event. The first pass runs at once.
/// Passes never overlap; the pass handles its own expected errors.
/// </summary>
internal sealed class PassLoop : IAsyncDisposable
{
    private readonly Func<Task> _pass;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly ITimer _sweep;
    private readonly Task _loop;
    private int _requested;

    /// <summary>Starts the loop; <paramref name="pass"/> runs at once, then on each request and every <paramref name="sweep"/>.</summary>
    public PassLoop(Func<Task> pass, TimeProvider time, TimeSpan sweep)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(time);
        _pass = pass;
        _time = time;
        Request();
        _sweep = time.CreateTimer(static state => ((PassLoop)state!).Request(), this, sweep, sweep);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Asks for a pass: the next one starts at once, or after the one running (requests in between are one). Safe from any thread.</summary>
    public void Request()
    {
        if (Interlocked.Exchange(ref _requested, 1) == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (ObjectDisposedException)
            {
                // A change signalled while the loop stopped: nothing is left to run.
            }
        }
    }

    private async Task RunAsync()
    {
        try
        {
            while (true)
            {
                await _wake.WaitAsync(_stop.Token).ConfigureAwait(false);
                // Requests from now on are for the next pass: what they signal may come after this one read.
                Volatile.Write(ref _requested, 0);
                long started = _time.GetTimestamp();
                await _pass().ConfigureAwait(false);
                // The cost bound under load: a pass that took long is followed by as long a rest. A
                // quiet node's pass takes about a millisecond, so a change waits no timer worth the name.
                TimeSpan took = _time.GetElapsedTime(started);
                if (took > TimeSpan.Zero)
                {
                    await Task.Delay(took, _time, _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Stops the sweep, then the loop once its pass (if one runs) ended.</summary>
    public async ValueTask DisposeAsync()
    {
        await _sweep.DisposeAsync().ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
        _wake.Dispose();
    }
}
