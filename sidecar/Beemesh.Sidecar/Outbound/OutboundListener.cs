using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Tunnel;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Outbound;

/// <summary>
/// The outbound half of the sidecar: it claims guest flows to mesh addresses and splices each
/// onto a tunnel stream to the destination's sidecar. As the netstack's <see cref="IFlowAcceptor"/>
/// (what the sidecar uses) a flow arrives in process as a <see cref="GuestFlowStream"/>, with no
/// socket in between. As an <see cref="IFlowRedirector"/> (after <see cref="Start"/>) flows are
/// sent to its own loopback listener instead, and each accepted socket is mapped back to the
/// address the guest dialled through <see cref="Connected"/>.
/// </summary>
public sealed class OutboundListener : IFlowRedirector, IFlowAcceptor, IAsyncDisposable
{
    /// <summary>How long an accepted socket waits for <see cref="Connected"/> to name its destination.</summary>
    private static readonly TimeSpan MappingTimeout = TimeSpan.FromSeconds(5);

    private readonly IMeshDirectory _directory;
    private readonly TunnelClientPool _pool;
    private readonly ILogger _logger;
    private readonly TcpListener _listener;
    private readonly ConcurrentDictionary<IPEndPoint, TaskCompletionSource<IPEndPoint>> _destinations = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _acceptLoop = Task.CompletedTask;
    private int _active;

    /// <summary>Creates a listener on 127.0.0.1 (a free port) that tunnels through <paramref name="pool"/>.</summary>
    public OutboundListener(IMeshDirectory directory, TunnelClientPool pool, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(pool);
        _directory = directory;
        _pool = pool;
        _logger = logger ?? NullLogger.Instance;
        _listener = new TcpListener(IPAddress.Loopback, 0);
    }

    /// <summary>The listener's endpoint (valid after <see cref="Start"/>).</summary>
    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Flows accepted in process whose splice has not ended yet.</summary>
    public int ActiveInProcessFlows => Volatile.Read(ref _active);

    /// <summary>Starts accepting redirected flows (the <see cref="IFlowRedirector"/> path only).</summary>
    public void Start()
    {
        _listener.Start();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <inheritdoc />
    public bool TryRedirect(IPEndPoint destination, out IPEndPoint hostEndpoint)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (_directory.ResolveAddress(destination.Address) is null)
        {
            hostEndpoint = null!;
            return false;
        }

        hostEndpoint = Endpoint;
        return true;
    }

    /// <inheritdoc />
    public void Connected(IPEndPoint destination, IPEndPoint localEndpoint)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(localEndpoint);
        _destinations.GetOrAdd(localEndpoint, static _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(destination);
    }

    /// <inheritdoc />
    public bool Claims(IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return _directory.ResolveAddress(destination.Address) is not null;
    }

    /// <inheritdoc />
    public void Accept(IPEndPoint destination, GuestFlowStream stream)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(stream);
        Interlocked.Increment(ref _active);
        // The splice reading it never blocks: the guest's bytes go into the tunnel from the stack's loop.
        stream.InlineReadCompletions = true;
        // Off the stack's loop thread: opening the tunnel stream may take the pool's lock.
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Self.HandleAttachedAsync(state.Destination, state.Stream), (Self: this, Destination: destination, Stream: stream), preferLocal: false);
    }

    /// <summary>Opens a tunnel stream to <paramref name="destination"/> (a mesh address and port) directly.</summary>
    public Task<TunnelStream> OpenAsync(IPEndPoint destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        // A replica per connection: the address leads to its name's service, not to one workload.
        MeshPeer peer = _directory.PickReplica(destination.Address)
            ?? throw new IOException($"{destination.Address} is not a mesh address.");
        return _pool.OpenAsync(peer, destination.Port, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = HandleAsync(socket);
        }
    }

    private async Task HandleAttachedAsync(IPEndPoint destination, GuestFlowStream guest)
    {
        try
        {
            await using TunnelStream tunnel = await OpenAsync(destination, _stop.Token).ConfigureAwait(false);
            try
            {
                await StreamSplicer.SpliceAsync(guest, () => StreamSplicer.ShutdownWrite(guest), tunnel, tunnel.ShutdownWriteAsync, null, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException)
            {
                // The tunnel stream was reset (revoked, peer gone): pass it on as an RST.
                guest.Abort();
                throw;
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        {
            if (!_stop.IsCancellationRequested)
            {
                Log.OutboundFailed(_logger, destination.ToString(), e.Message);
            }

            guest.Abort();
        }
        finally
        {
            await guest.DisposeAsync().ConfigureAwait(false);
            Interlocked.Decrement(ref _active);
        }
    }

    private async Task HandleAsync(Socket socket)
    {
        socket.NoDelay = true;
        var guest = new NetworkStream(socket, ownsSocket: true);
        var remote = (IPEndPoint)socket.RemoteEndPoint!;
        TaskCompletionSource<IPEndPoint> mapping = _destinations.GetOrAdd(remote, static _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
        string where = remote.ToString();
        try
        {
            IPEndPoint destination = await mapping.Task.WaitAsync(MappingTimeout, _stop.Token).ConfigureAwait(false);
            where = destination.ToString();
            await using TunnelStream tunnel = await OpenAsync(destination, _stop.Token).ConfigureAwait(false);
            try
            {
                await StreamSplicer.SpliceAsync(guest, () => StreamSplicer.ShutdownWrite(guest), tunnel, tunnel.ShutdownWriteAsync, null, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException)
            {
                // The tunnel stream was reset (revoked, peer gone): pass it on as an RST.
                StreamSplicer.Reset(guest);
                throw;
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        {
            if (!_stop.IsCancellationRequested)
            {
                Log.OutboundFailed(_logger, where, e.Message); // at shutdown every flow ends this way: not news
            }

            StreamSplicer.Reset(guest);
        }
        finally
        {
            _destinations.TryRemove(remote, out _);
            await guest.DisposeAsync().ConfigureAwait(false);
        }
    }
}
