using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.Tunnel;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Outbound;

/// <summary>Opens the mesh side of one local connection to <paramref name="service"/> (<c>NAME.NAMESPACE</c>) port <paramref name="port"/>.</summary>
public delegate Task<Stream> UpstreamOpener(string service, int port, CancellationToken cancellationToken);

/// <summary>
/// A local TCP listener for one port of a mesh service, for a workload that shares its sidecar's
/// network (no tap): each accepted connection is carried to the service through
/// <see cref="UpstreamOpener"/> (an mTLS tunnel to the service's sidecar), half-close aware. A
/// connection that cannot be carried (unknown service, refused by the peer) is reset.
/// </summary>
public sealed class UpstreamListener : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly UpstreamOpener _open;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task _accepting = Task.CompletedTask;
    private long _failed;

    /// <summary>Listens on <paramref name="endpoint"/> for <paramref name="service"/> port <paramref name="port"/>; call <see cref="Start"/>.</summary>
    public UpstreamListener(IPEndPoint endpoint, string service, int port, UpstreamOpener open, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(open);
        Service = service;
        Port = port;
        _open = open;
        _logger = logger ?? NullLogger.Instance;
        _listener = new TcpListener(endpoint);
    }

    /// <summary>The mesh service (<c>NAME.NAMESPACE</c>).</summary>
    public string Service { get; }

    /// <summary>The service's port.</summary>
    public int Port { get; }

    /// <summary>Where it listens (the bound port once started).</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Connections that could not be carried to the service (reset).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Binds and starts accepting; throws <see cref="SocketException"/> when the endpoint cannot be bound.</summary>
    public void Start()
    {
        _listener.Start();
        _accepting = AcceptLoopAsync();
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken cancel = _stop.Token;
        while (!cancel.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                if (cancel.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            _ = CarryAsync(socket, cancel);
        }
    }

    private async Task CarryAsync(Socket socket, CancellationToken cancel)
    {
        await Task.Yield();
        socket.NoDelay = true;
        await using var local = new NetworkStream(socket, ownsSocket: true);
        try
        {
            await using Stream remote = await _open(Service, Port, cancel).ConfigureAwait(false);
            Func<ValueTask> shutdownRemote = remote is TunnelStream tunnel ? tunnel.ShutdownWriteAsync : () => StreamSplicer.ShutdownWrite(remote);
            await StreamSplicer.SpliceAsync(local, () => StreamSplicer.ShutdownWrite(local), remote, shutdownRemote, null, cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or HttpRequestException or OperationCanceledException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failed);
            Log.OutboundFailed(_logger, $"{Service}:{Port}", e.Message);
            StreamSplicer.Reset(local);
        }
    }

    /// <summary>Stops accepting (connections already carried run on until they end).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
    }
}
