using Beemesh.Spiffe.WorkloadApi;
using Grpc.Core;

namespace Beemesh.Spiffe.X509;

/// <summary>
/// Keeps the workload's current X.509 state from the Workload API's FetchX509SVID stream, so TLS
/// code can read <see cref="Current"/> on every handshake and pick up rotated SVIDs without a
/// restart. Reconnects with exponential backoff (1 s doubling to 30 s, reset after a message) on
/// every failure except InvalidArgument, which the standard reserves for client mistakes (missing
/// security header) and which retrying cannot fix; then <see cref="Completion"/> faults.
/// </summary>
public sealed class X509Source : IAsyncDisposable
{
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly WorkloadApiClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstUpdate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile X509Context? _current;
    private Task _loop = Task.CompletedTask;

    /// <summary>Creates a source that is not yet running; see <see cref="StartAsync"/>.</summary>
    public X509Source(WorkloadApiClient client, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        TimeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The clock used for backoff and, by <see cref="SpiffeTls"/>, for validating peers.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>The latest X.509 state; throws <see cref="InvalidOperationException"/> before the first update.</summary>
    public X509Context Current => _current ?? throw new InvalidOperationException("No X.509 context has been received yet.");

    /// <summary>True once the first update arrived.</summary>
    public bool HasContext => _current is not null;

    /// <summary>Completes when the source stops: on dispose (successfully) or on InvalidArgument (faulted).</summary>
    public Task Completion => _loop;

    /// <summary>Raised after <see cref="Current"/> changed, on the stream's thread.</summary>
    public event EventHandler<X509Context>? Updated;

    /// <summary>Starts a source on <paramref name="client"/> and waits for its first update.</summary>
    public static async Task<X509Source> StartAsync(WorkloadApiClient client, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        var source = new X509Source(client, timeProvider);
        source.Start();
        try
        {
            await source.WaitForUpdateAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return source;
    }

    /// <summary>Starts watching the stream in the background.</summary>
    public void Start() => _loop = Task.Run(RunAsync);

    /// <summary>Completes once the first update arrived; faults when the source stops before that.</summary>
    public Task WaitForUpdateAsync(CancellationToken cancellationToken = default) => _firstUpdate.Task.WaitAsync(cancellationToken);

    private async Task RunAsync()
    {
        CancellationToken stop = _stop.Token;
        TimeSpan backoff = InitialBackoff;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await foreach (X509Context context in _client.WatchX509ContextAsync(stop).ConfigureAwait(false))
                    {
                        backoff = InitialBackoff;
                        _current = context;
                        _firstUpdate.TrySetResult();
                        Updated?.Invoke(this, context);
                    }
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
                {
                    throw;
                }
                catch (Exception) when (!stop.IsCancellationRequested)
                {
                    // PermissionDenied (not attested yet), Unavailable (agent restarting) and the rest:
                    // wait and dial again.
                }

                if (stop.IsCancellationRequested)
                {
                    break;
                }

                await Task.Delay(backoff, TimeProvider, stop).ConfigureAwait(false);
                backoff = backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _firstUpdate.TrySetException(e);
            throw;
        }

        _firstUpdate.TrySetCanceled(stop);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (RpcException)
        {
            // Already reported through Completion.
        }

        _stop.Dispose();
    }
}
