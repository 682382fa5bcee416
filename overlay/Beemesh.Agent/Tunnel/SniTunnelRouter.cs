using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Agent.Tunnel;

/// <summary>
/// The node's tunnel port: accepts TCP connections, reads the TLS ClientHello's server name
/// without terminating TLS, maps it to a local workload's sidecar tunnel endpoint and splices
/// bytes both ways, so mutual TLS stays end to end between the two sidecars. An unknown name, a
/// hello without a name, a malformed hello, or one not complete within
/// <see cref="HelloTimeout"/> closes the connection and is counted in <see cref="Counters"/>.
/// </summary>
public sealed class SniTunnelRouter : IAsyncDisposable
{
    /// <summary>Default tunnel port of a node (the port Istio uses for HBONE).</summary>
    public const int DefaultPort = 15008;

    private readonly Func<string, IPEndPoint?> _resolve;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private Task? _accepting;

    /// <summary>
    /// Creates a router listening on <paramref name="endpoint"/>; <paramref name="resolve"/> maps a
    /// lower-case server name to the local sidecar tunnel endpoint, or null when no local workload
    /// has that name.
    /// </summary>
    public SniTunnelRouter(IPEndPoint endpoint, Func<string, IPEndPoint?> resolve, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        _resolve = resolve ?? throw new ArgumentNullException(nameof(resolve));
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(endpoint);
        _listener.Listen(512);
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    /// <summary>How long a client has to send its whole ClientHello (default 10 s).</summary>
    public TimeSpan HelloTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a connection to the local sidecar may take (default 5 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The bound endpoint (with the actual port when 0 was asked).</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>
    /// Counters by name: <c>routed</c>, and refusals <c>refused_unknown_name</c>,
    /// <c>refused_no_name</c>, <c>refused_malformed</c>, <c>refused_timeout</c>, <c>refused_unreachable</c>.
    /// </summary>
    public IReadOnlyDictionary<string, long> Counters => _counters;

    /// <summary>Starts accepting connections.</summary>
    public void Start() => _accepting ??= AcceptLoopAsync();

    private void Count(string name) => _counters.AddOrUpdate(name, 1, static (_, v) => v + 1);

    private async Task AcceptLoopAsync()
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
            catch (SocketException)
            {
                continue;
            }

            Task connection = HandleAsync(client);
            _connections.TryAdd(connection, 0);
            _ = connection.ContinueWith(t => _connections.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task HandleAsync(Socket client)
    {
        string peer = client.RemoteEndPoint?.ToString() ?? "?";
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ClientHelloSni.MaxHelloBytes);
        Socket? upstream = null;
        try
        {
            client.NoDelay = true;
            int length = 0;
            string? name = null;
            using (var helloTimeout = new CancellationTokenSource(HelloTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(helloTimeout.Token, _stop.Token))
            {
                SniReadStatus status = SniReadStatus.NeedMore;
                while (status == SniReadStatus.NeedMore)
                {
                    int read;
                    try
                    {
                        read = await client.ReceiveAsync(buffer.AsMemory(length, ClientHelloSni.MaxHelloBytes - length), SocketFlags.None, linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (helloTimeout.IsCancellationRequested)
                    {
                        Refuse(peer, "refused_timeout", "no complete ClientHello in time");
                        return;
                    }

                    if (read == 0)
                    {
                        Refuse(peer, "refused_malformed", "closed before a complete ClientHello");
                        return;
                    }

                    length += read;
                    status = ClientHelloSni.TryRead(buffer.AsSpan(0, length), out name);
                    if (status == SniReadStatus.NeedMore && length == ClientHelloSni.MaxHelloBytes)
                    {
                        status = SniReadStatus.Malformed;
                    }
                }

                switch (status)
                {
                    case SniReadStatus.Malformed:
                        Refuse(peer, "refused_malformed", "not a TLS ClientHello");
                        return;
                    case SniReadStatus.Missing:
                        Refuse(peer, "refused_no_name", "ClientHello without a server name");
                        return;
                }
            }

            IPEndPoint? target = _resolve(name!);
            if (target is null)
            {
                Refuse(peer, "refused_unknown_name", $"no local workload named {name}");
                return;
            }

            upstream = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using (var connectTimeout = new CancellationTokenSource(ConnectTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(connectTimeout.Token, _stop.Token))
            {
                try
                {
                    await upstream.ConnectAsync(target, linked.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    Refuse(peer, "refused_unreachable", $"sidecar of {name} at {target} unreachable");
                    return;
                }
            }

            await upstream.SendAsync(buffer.AsMemory(0, length), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null!;
            Count("routed");
            using var a = new NetworkStream(client, ownsSocket: false);
            using var b = new NetworkStream(upstream, ownsSocket: false);
            Task up = CopyAsync(a, upstream);
            Task down = CopyAsync(b, client);
            Task first = await Task.WhenAny(up, down).ConfigureAwait(false);
            if (first.IsFaulted)
            {
                client.Close(0);
                upstream.Close(0);
            }

            await Task.WhenAll(up, down).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer or the sidecar went away, or the router stops: both sockets are closed below.
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            client.Dispose();
            upstream?.Dispose();
        }
    }

    private async Task CopyAsync(Stream from, Socket to)
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int read;
            while ((read = await from.ReadAsync(chunk, _stop.Token).ConfigureAwait(false)) > 0)
            {
                await to.SendAsync(chunk.AsMemory(0, read), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }

            // Pass the end of this direction on as a FIN; the other direction keeps flowing.
            try
            {
                to.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private void Refuse(string peer, string counter, string reason)
    {
        Count(counter);
        TunnelRouterLog.Refused(_logger, peer, reason);
    }

    /// <summary>Stops accepting, closes every routed connection and waits for them to end.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(false);
        }

        try
        {
            await Task.WhenAll(_connections.Keys).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}

/// <summary>Log lines of the node tunnel port.</summary>
internal static partial class TunnelRouterLog
{
    [LoggerMessage(EventId = 4300, Level = LogLevel.Information, Message = "tunnel port: connection from {Peer} closed: {Reason}")]
    public static partial void Refused(ILogger logger, string peer, string reason);
}
