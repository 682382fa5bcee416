using Beemesh.Agent.State;
using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// Renews this node's certificates when they are due: waits (on the injected clock) until the moment
/// <c>due()</c> names, runs <c>renew</c>, and starts over with the new due moment. A failed renewal is
/// logged, counted and tried again every retry interval until one succeeds, so a root holder that is
/// down for a while delays the renewal, not the node. Every state change (next attempt, success,
/// failure) bumps <see cref="Version"/>, which <see cref="WaitForChangeAsync"/> follows.
/// </summary>
internal sealed class NodeCertificateRenewal : IAsyncDisposable
{
    // The longest single wait: the clock is consulted again at least this often (timers cap near 49 days).
    private static readonly TimeSpan MaxWait = TimeSpan.FromDays(7);

    private readonly Func<DateTimeOffset> _due;
    private readonly Func<CancellationToken, Task> _renew;
    private readonly TimeSpan _retryInterval;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ChangeFeed _changes;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _renewals;
    private long _failures;

    public NodeCertificateRenewal(Func<DateTimeOffset> due, Func<CancellationToken, Task> renew, TimeSpan retryInterval, TimeProvider time, ILogger logger)
    {
        _due = due;
        _renew = renew;
        _retryInterval = retryInterval;
        _time = time;
        _logger = logger;
        _changes = new ChangeFeed(time);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Successful renewals since the start.</summary>
    public long Renewals => Interlocked.Read(ref _renewals);

    /// <summary>Failed renewal attempts since the start.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Why the last attempt failed, or null after a success.</summary>
    public string? LastError { get; private set; }

    /// <summary>When the next attempt is due (the renewal point, or the retry after a failure).</summary>
    public DateTimeOffset NextAttempt { get; private set; }

    /// <summary>Grows at every change of the properties above.</summary>
    public long Version => _changes.Version;

    /// <summary>Completes once <see cref="Version"/> exceeds <paramref name="since"/>, or after <paramref name="timeout"/>.</summary>
    public Task WaitForChangeAsync(long since, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _changes.WaitAsync(epoch: null, since, timeout, cancellationToken);

    private async Task RunAsync()
    {
        CancellationToken stop = _stop.Token;
        DateTimeOffset? retryAt = null;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                DateTimeOffset at = retryAt ?? _due();
                if (at != NextAttempt)
                {
                    NextAttempt = at;
                    Changed();
                }

                TimeSpan wait = at - _time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait < MaxWait ? wait : MaxWait, _time, stop).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await _renew(stop).ConfigureAwait(false);
                    retryAt = null;
                    LastError = null;
                    Interlocked.Increment(ref _renewals);
                }
                catch (Exception e) when (!stop.IsCancellationRequested)
                {
                    retryAt = _time.GetUtcNow() + _retryInterval;
                    LastError = e.Message;
                    Interlocked.Increment(ref _failures);
                    NodeCertificateLog.RenewalFailed(_logger, e.Message, retryAt.Value);
                }

                Changed();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private void Changed() => ChangeFeed.Wake(_changes.Bump().Signal);

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
