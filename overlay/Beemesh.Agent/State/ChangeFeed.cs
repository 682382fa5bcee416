namespace Beemesh.Agent.State;

/// <summary>
/// A version counter that long-poll watchers wait on. Every change completes the current signal and
/// replaces it, so a change wakes its watchers at once. The <see cref="Epoch"/> is random per agent
/// start: a watcher that presents another epoch (it watched an earlier run of the agent) is answered
/// at once, whatever the versions say. Thread-safe.
/// </summary>
internal sealed class ChangeFeed
{
    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private TaskCompletionSource _changed = NewSignal();
    private TaskCompletionSource _waitersChanged = NewSignal();
    private long _version;
    private int _waiters;

    public ChangeFeed(TimeProvider time, long version = 0)
    {
        _time = time;
        _version = version;
    }

    /// <summary>Random per agent start; carried by every answer of list and watch.</summary>
    public string Epoch { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    public long Version
    {
        get
        {
            lock (_lock)
            {
                return _version;
            }
        }
    }

    /// <summary>Number of watches currently waiting for a change.</summary>
    public int Waiters => Volatile.Read(ref _waiters);

    /// <summary>
    /// Completes once at least <paramref name="count"/> watches wait (each with its timeout armed), checked
    /// again whenever a watch starts waiting: how a caller learns a watch is held without polling.
    /// </summary>
    public async Task WaitForWaitersAsync(int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed = Volatile.Read(ref _waitersChanged).Task; // taken before the check, so no watch in between is missed
            if (Waiters >= count)
            {
                return;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sets the next version and returns it with the signal to complete once the caller's state
    /// holds it (call <see cref="Wake"/> outside the caller's own lock).
    /// </summary>
    public (long Version, TaskCompletionSource Signal) Bump()
    {
        lock (_lock)
        {
            _version++;
            TaskCompletionSource old = _changed;
            _changed = NewSignal();
            return (_version, old);
        }
    }

    /// <summary>Wakes the watchers of a bump.</summary>
    public static void Wake(TaskCompletionSource signal) => signal.TrySetResult();

    /// <summary>
    /// Completes as soon as the version exceeds <paramref name="since"/> (or at once when
    /// <paramref name="epoch"/> is given and is not this run's), or after <paramref name="timeout"/>.
    /// </summary>
    public async Task WaitAsync(string? epoch, long since, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (epoch is not null && epoch != Epoch)
        {
            return;
        }

        Task changed;
        lock (_lock)
        {
            if (_version > since)
            {
                return;
            }

            changed = _changed.Task;
        }

        // The timeout is armed before the watch counts as waiting, so whoever observes the count
        // (tests advancing a fake clock) knows the timer exists.
        Task timed = changed.WaitAsync(timeout, _time, cancellationToken);
        Interlocked.Increment(ref _waiters);
        Interlocked.Exchange(ref _waitersChanged, NewSignal()).TrySetResult();
        try
        {
            await timed.ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
        }
    }

    /// <summary>
    /// Parses a watch position: <c>EPOCH:VERSION</c>, or a bare <c>VERSION</c> (any epoch). False
    /// when the text is neither.
    /// </summary>
    public static bool TryParsePosition(string text, out string? epoch, out long version)
    {
        epoch = null;
        int colon = text.LastIndexOf(':');
        string number = text;
        if (colon >= 0)
        {
            epoch = text[..colon];
            number = text[(colon + 1)..];
            if (epoch.Length is 0 or > 64)
            {
                version = 0;
                return false;
            }
        }

        return long.TryParse(number, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out version);
    }

    // Continuations run off the lock holder's thread, so a slow watcher cannot delay a change.
    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
