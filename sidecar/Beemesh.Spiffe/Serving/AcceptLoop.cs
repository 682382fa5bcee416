using System.Net.Sockets;

namespace Beemesh.Spiffe.Serving;

/// <summary>
/// Accepts connections on a listening socket and hands each to a handler, keeping the task of every
/// connection still being served so that <see cref="StopAsync"/> can stop accepting, cancel
/// <see cref="Stopping"/> and wait for them to end. A failed accept (for example EMFILE) is passed
/// to an optional callback and the loop keeps serving.
/// </summary>
public sealed class AcceptLoop
{
    private readonly Socket _listener;
    private readonly Func<Socket, Task?> _handle;
    private readonly Func<SocketException, Task>? _acceptFailed;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<Task> _connections = [];
    private Task? _accepting;
    private int _stopped;

    /// <summary>
    /// Creates a loop over <paramref name="listener"/> (bound and listening). <paramref name="handle"/>
    /// takes each accepted socket and returns the task serving it, or null when it dealt with the
    /// socket at once; <paramref name="acceptFailed"/>, when given, is awaited after a failed accept
    /// before the next one.
    /// </summary>
    public AcceptLoop(Socket listener, Func<Socket, Task?> handle, Func<SocketException, Task>? acceptFailed = null)
    {
        _listener = listener ?? throw new ArgumentNullException(nameof(listener));
        _handle = handle ?? throw new ArgumentNullException(nameof(handle));
        _acceptFailed = acceptFailed;
        Stopping = _stop.Token;
    }

    /// <summary>Cancelled when <see cref="StopAsync"/> is called.</summary>
    public CancellationToken Stopping { get; }

    /// <summary>Whether <see cref="StopAsync"/> was called.</summary>
    public bool IsStopping => Volatile.Read(ref _stopped) != 0;

    /// <summary>Starts accepting on the thread pool; a second call does nothing.</summary>
    public void Start()
    {
        lock (_connections)
        {
            _accepting ??= Task.Run(RunAsync);
        }
    }

    /// <summary>Keeps <paramref name="connection"/> until it ends, so that <see cref="StopAsync"/> waits for it.</summary>
    public void Track(Task connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        lock (_connections)
        {
            _connections.Add(connection);
        }

        connection.ContinueWith(
            t =>
            {
                lock (_connections)
                {
                    _connections.Remove(t);
                }
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                if (_acceptFailed is not null)
                {
                    await _acceptFailed(e).ConfigureAwait(false);
                }

                continue;
            }

            if (_handle(client) is { } connection)
            {
                Track(connection);
            }
        }
    }

    /// <summary>
    /// Cancels <see cref="Stopping"/>, closes the listener, and waits for the loop and for every
    /// tracked connection to end, at most <paramref name="drainLimit"/> when given (connections
    /// still running then are left to end on their own). Connections that end in a socket, I/O or
    /// cancellation error count as ended. Calls after the first return at once.
    /// </summary>
    public async Task StopAsync(TimeSpan? drainLimit = null)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        Task? accepting;
        lock (_connections)
        {
            accepting = _accepting;
        }

        if (accepting is not null)
        {
            await accepting.ConfigureAwait(false);
        }

        Task[] pending;
        lock (_connections)
        {
            pending = [.. _connections];
        }

        Task all = Task.WhenAll(pending);
        try
        {
            await (drainLimit is { } limit ? all.WaitAsync(limit) : all).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // a connection did not notice the stop in time; it ends on its own
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
