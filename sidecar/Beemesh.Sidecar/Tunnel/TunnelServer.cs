using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Authorization;
using Beemesh.Sidecar.Http;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Sidecar.Tunnel.Http2;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// The inbound half of the sidecar: HTTP/2 (<see cref="Http2Connection"/>) over TLS 1.3 with a
/// required client SVID (checked by <see cref="SpiffeTls"/> against the trust bundle). Each CONNECT
/// stream is authorized with the caller's identity, then spliced onto a connection into the
/// workload from <see cref="IGuestConnector"/> and tracked by <see cref="Connections"/> until it
/// ends or is revoked.
/// </summary>
public sealed class TunnelServer : IAsyncDisposable
{
    private readonly TunnelServerOptions _options;
    private readonly IMeshDirectory _directory;
    private readonly IGuestConnector _guests;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly X509Source _source;
    private readonly Dictionary<Http2Connection, byte> _live = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Socket, byte> _handedOff = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<SslApplicationProtocol, Func<SslStream, Task>> _protocols = new();
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private Task? _accepting;
    private HttpPortServer? _http;
    private long _handshakes;

    private TunnelServer(TunnelServerOptions options, X509Source source, IMeshDirectory directory, IGuestConnector guests, LiveConnectionRegistry registry, ILogger logger, TimeProvider time)
    {
        _source = source;
        _options = options;
        _directory = directory;
        _guests = guests;
        Connections = registry;
        _logger = logger;
        _time = time;
        Endpoint = options.ListenEndpoint;
    }

    /// <summary>Where the server listens (the real port when 0 was asked for).</summary>
    public IPEndPoint Endpoint { get; private set; }

    /// <summary>The live tunnelled connections, re-authorized on every change.</summary>
    public LiveConnectionRegistry Connections { get; }

    /// <summary>TLS handshakes started by callers so far (one per tunnel connection).</summary>
    public long HandshakesStarted => Interlocked.Read(ref _handshakes);

    /// <summary>Starts a server with the identity of <paramref name="source"/>.</summary>
    public static async Task<TunnelServer> StartAsync(
        TunnelServerOptions options,
        X509Source source,
        IMeshDirectory directory,
        IPolicySource policies,
        IGuestConnector guests,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(guests);
        loggerFactory ??= NullLoggerFactory.Instance;
        TimeProvider time = timeProvider ?? source.TimeProvider;
        ILogger logger = loggerFactory.CreateLogger("Beemesh.Sidecar.Tunnel");
        // A caller whose handshake SVID expired keeps its flows while it is still a mesh workload.
        // A caller whose SVID a revoked node issued is refused and cut, whatever its identity.
        var registry = new LiveConnectionRegistry(policies, source, null, logger, time, id => directory.ResolveIdentity(id) is not null,
            revokedIssuer: directory.RevokedIssuerOf);
        var server = new TunnelServer(options, source, directory, guests, registry, logger, time);
        if (options.HttpPorts.Count != 0)
        {
            server._http = await HttpPortServer.StartAsync(
                options, registry, guests, () => source.Current.DefaultSvid.Id.ToString(), loggerFactory, time, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            Socket listener = server._listener = options.Listener ?? Listen(options.ListenEndpoint);
            server.Endpoint = (IPEndPoint)listener.LocalEndPoint!;
        }
        catch
        {
            // The port is taken: release what was made before it.
            server._listener?.Dispose();
            registry.Dispose();
            if (server._http is not null)
            {
                await server._http.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        server._accepting = Task.Run(server.AcceptLoopAsync, CancellationToken.None);
        return server;
    }

    /// <summary>A listening socket for <see cref="TunnelServerOptions.Listener"/>, bound to <paramref name="endpoint"/>.</summary>
    public static Socket Listen(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(endpoint);
            listener.Listen(512);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _stop.Cancel();
        Connections.Dispose();
        _listener?.Dispose();
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(false);
        }

        Http2Connection[] live;
        lock (_live)
        {
            live = [.. _live.Keys];
        }

        // GOAWAY to every caller, then close: live tunnels never finish on their own.
        await Task.WhenAll(live.Select(c => c.ShutdownAsync())).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        foreach (Http2Connection connection in live)
        {
            connection.Abort();
        }

        if (_http is not null)
        {
            await _http.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    /// <summary>The caller's principal as policies name it: the SPIFFE ID without <c>spiffe://</c>.</summary>
    internal static string Principal(SpiffeId id) => id.TrustDomain + id.Path;

    /// <summary>The namespace from a Kubernetes-style path <c>/ns/&lt;ns&gt;/sa/&lt;sa&gt;</c>, or null.</summary>
    internal static string? NamespaceOf(SpiffeId id)
    {
        ReadOnlySpan<char> path = id.Path;
        if (!path.StartsWith("/ns/"))
        {
            return null;
        }

        path = path[4..];
        int slash = path.IndexOf('/');
        return slash < 0 ? path.ToString() : path[..slash].ToString();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // a connection that died in the backlog
            }

            _ = ServeConnectionAsync(socket);
        }
    }

    /// <summary>
    /// Serves the connections whose caller asks for <paramref name="protocol"/> (ALPN) with
    /// <paramref name="serve"/> instead of HTTP/2 tunnels, until the returned registration is
    /// disposed: the replicas of a state store reach each other this way, through the node's tunnel
    /// port. <paramref name="serve"/> gets the TLS stream after the handshake (the caller's SVID is
    /// verified against the trust bundle, and not issued by a node removed from the mesh); it decides
    /// whom it serves, and the stream is closed when it returns.
    /// </summary>
    public IDisposable ServeProtocol(SslApplicationProtocol protocol, Func<SslStream, Task> serve)
    {
        ArgumentNullException.ThrowIfNull(serve);
        if (protocol == SslApplicationProtocol.Http2 || protocol.Protocol.Length == 0)
        {
            throw new ArgumentException($"protocol {protocol} is the tunnel's own", nameof(protocol));
        }

        if (!_protocols.TryAdd(protocol, serve))
        {
            throw new InvalidOperationException($"protocol {protocol} is served already");
        }

        return new ProtocolRegistration(_protocols, protocol);
    }

    private sealed class ProtocolRegistration(System.Collections.Concurrent.ConcurrentDictionary<SslApplicationProtocol, Func<SslStream, Task>> protocols, SslApplicationProtocol protocol) : IDisposable
    {
        public void Dispose() => protocols.TryRemove(protocol, out _);
    }

    /// <summary>
    /// Serves a connection accepted elsewhere (the node's tunnel port hands callers' connections
    /// over as descriptors) exactly as one this server accepted.
    /// </summary>
    public void ServeAccepted(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (_stop.IsCancellationRequested)
        {
            socket.Dispose();
            return;
        }

        _handedOff.TryAdd(socket, 0);
        _ = ServeHandedOffAsync(socket);
    }

    /// <summary>
    /// Resets every connection that came through <see cref="ServeAccepted"/> (the agent that handed
    /// them over is gone: without it this sidecar learns of no node removal, so those callers are cut,
    /// as they were when the agent relayed them); returns how many.
    /// </summary>
    public int AbortHandedOff()
    {
        int aborted = 0;
        foreach (Socket socket in _handedOff.Keys)
        {
            if (_handedOff.TryRemove(socket, out _))
            {
                socket.Close(0);
                aborted++;
            }
        }

        return aborted;
    }

    /// <summary>Connections that came through <see cref="ServeAccepted"/> and are open now.</summary>
    public int HandedOffConnections => _handedOff.Count;

    private async Task ServeHandedOffAsync(Socket socket)
    {
        try
        {
            await ServeConnectionAsync(socket).ConfigureAwait(false);
        }
        finally
        {
            _handedOff.TryRemove(socket, out _);
        }
    }

    private async Task ServeConnectionAsync(Socket socket)
    {
        Interlocked.Increment(ref _handshakes);
        long start = _time.GetTimestamp();
        socket.NoDelay = true;
        Beemesh.Agent.Client.TunnelKeepAlive.ConfigureSidecarSocket(socket, _options.KeepAliveInterval, _options.KeepAliveTimeout);
        var transport = new SocketTransport(socket);
        var tls = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            SslServerAuthenticationOptions ssl = SpiffeTls.CreateServerOptions(_source, static _ => true);
            ssl.ApplicationProtocols = [SslApplicationProtocol.Http2, .. _protocols.Keys];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(HandshakeTimeout);
            await tls.AuthenticateAsServerAsync(ssl, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
            Connections.Counters.ServerHandshakes.Fail();
            await tls.DisposeAsync().ConfigureAwait(false);
            return;
        }

        Connections.Counters.ServerHandshakes.Observe(_time.GetElapsedTime(start));
        // SpiffeTls completed the handshake, so the certificate is a verified SVID.
        var certificate = tls.RemoteCertificate as X509Certificate2;
        SslApplicationProtocol negotiated = tls.NegotiatedApplicationProtocol;
        if (negotiated.Protocol.Length != 0 && negotiated != SslApplicationProtocol.Http2)
        {
            await ServeOtherProtocolAsync(tls, certificate, negotiated).ConfigureAwait(false);
            return;
        }

        // From here the connection's reader thread blocks in recv and writers send themselves.
        bool direct = transport.EnterDirectMode();
        Http2Connection connection = Http2Connection.StartServer(
            tls,
            stream => HandleAsync(stream, certificate),
            new Http2ConnectionOptions
            {
                ReadThread = direct,
                MaxConcurrentStreams = _options.MaxStreamsPerConnection,
                IdleTimeout = _options.IdleTimeout,
                IdleTimeProvider = _time,
                KeepAliveInterval = _options.KeepAliveInterval,
                KeepAliveTimeout = _options.KeepAliveTimeout,
                TimeProvider = _options.KeepAliveTimeProvider ?? TimeProvider.System,
                OnIdleClose = _ => Connections.Counters.CountIdleClosed(),
                OnLost = OnLost,
            });
        lock (_live)
        {
            _live.Add(connection, 0);
        }

        if (_stop.IsCancellationRequested)
        {
            connection.Abort();
        }

        await connection.Completion.ConfigureAwait(false);
        lock (_live)
        {
            _live.Remove(connection);
        }
    }

    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    private async Task ServeOtherProtocolAsync(SslStream tls, X509Certificate2? certificate, SslApplicationProtocol protocol)
    {
        await using (tls.ConfigureAwait(false))
        {
            // A registration withdrawn since the handshake offered it: nobody serves it now.
            if (certificate is null || !_protocols.TryGetValue(protocol, out Func<SslStream, Task>? serve))
            {
                return;
            }

            if (_directory.RevokedIssuerOf(certificate) is { } revokedNode)
            {
                SvidValidator.TryGetSpiffeId(certificate, out SpiffeId? caller);
                Log.RevokedIssuer(_logger, caller?.ToString() ?? "?", 0, revokedNode);
                Connections.Counters.CountDecision(allowed: false, LiveConnectionRegistry.TriggerNodeRevoked);
                return;
            }

            try
            {
                await serve(tls).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The caller went away.
            }
        }
    }

    /// <summary>A caller's connection closed by the keep-alive or the PING budget: counted, and logged with its flows.</summary>
    private void OnLost(Http2Connection connection, Http2CloseReason reason, int flows)
    {
        Connections.Counters.CountTunnelLost(reason, flows);
        Log.TunnelLost(_logger, "caller", MeshCounters.LostLabel(reason), flows);
    }

    private static int PortOf(string? authority)
    {
        int colon = authority?.LastIndexOf(':') ?? -1;
        return colon >= 0 && int.TryParse(authority.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 1 and <= 65535 ? port : 0;
    }

    private async Task HandleAsync(Http2Stream tunnel, X509Certificate2? certificate)
    {
        await using (tunnel.ConfigureAwait(false))
        {
            int status = await ServeAsync(tunnel, certificate).ConfigureAwait(false);
            if (status != 0)
            {
                await tunnel.RespondAsync(status).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Serves one flow; returns the refusal status, or 0 when the flow was served.</summary>
    private async Task<int> ServeAsync(Http2Stream tunnel, X509Certificate2? certificate)
    {
        int port = PortOf(tunnel.Authority);
        if (port == 0)
        {
            return 400;
        }

        if (certificate is null || SvidValidator.TryGetSpiffeId(certificate, out SpiffeId? caller) != SvidValidationResult.Valid)
        {
            return 403;
        }

        // A node removed from the mesh keeps certificates that still chain to the root: refuse
        // what it issued before anything else looks at the caller.
        if (_directory.RevokedIssuerOf(certificate) is { } revokedNode)
        {
            Log.RevokedIssuer(_logger, caller!.ToString(), port, revokedNode);
            Connections.Counters.CountDecision(allowed: false, LiveConnectionRegistry.TriggerNodeRevoked);
            return 403;
        }

        // The workload sees the caller's mesh address as the connection's source; a caller the
        // directory does not know has none, and a made-up source would be a lie (or a martian
        // the guest drops), so it is refused like a denied one.
        MeshPeer? callerPeer = await _directory.ResolveIdentityAsync(caller!, tunnel.Aborted).ConfigureAwait(false);
        if (callerPeer is null)
        {
            Log.UnknownCaller(_logger, caller!.ToString(), port);
            return 403;
        }

        // A port declared HTTP is authorized per request (with method, path and host), not per flow:
        // deciding the flow as TCP would let a DENY on a path refuse every request.
        if (_http is not null && _options.HttpPorts.Contains(port))
        {
            await tunnel.RespondAsync(200).ConfigureAwait(false);
            await _http.ServeAsync(tunnel, new MeshCaller(caller!, certificate, callerPeer.MeshAddress, port)).ConfigureAwait(false);
            return 0;
        }

        var request = new AuthorizationRequest
        {
            WorkloadNamespace = _options.WorkloadNamespace,
            WorkloadLabels = _options.WorkloadLabels,
            SourcePrincipal = Principal(caller!),
            SourceNamespace = NamespaceOf(caller!),
            SourceAddress = callerPeer.MeshAddress,
            DestinationPort = port,
        };
        long changes = Connections.ChangeCount;
        AuthorizationDecision decision = Connections.Authorize(request);
        if (!decision.Allowed)
        {
            Connections.AuditDenied(caller!, request, decision);
            return 403;
        }

        Stream guest;
        try
        {
            guest = await _guests.ConnectAsync(callerPeer.MeshAddress, port, tunnel.Aborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            Log.GuestConnectFailed(_logger, port, e.Message);
            return 502;
        }

        string? error = null;
        try
        {
            // The 200 HEADERS go now: the caller's CONNECT completes on them, before any payload.
            await tunnel.RespondAsync(200).ConfigureAwait(false);
            var live = new LiveConnection(caller!, certificate, request, decision, _time.GetUtcNow(), () =>
            {
                // RST towards the workload, RST_STREAM towards the caller. The guest goes first: the
                // stream's reset ends the splice, whose cleanup would otherwise close the guest with a FIN.
                StreamSplicer.Reset(guest);
                tunnel.Reset(Http2ErrorCode.InternalError);
            });
            using IDisposable registration = Connections.Add(live, changes);
            try
            {
                await StreamSplicer.SpliceAsync(
                    tunnel,
                    tunnel.ShutdownWriteAsync,
                    guest,
                    () => StreamSplicer.ShutdownWrite(guest),
                    live.Count,
                    tunnel.Aborted).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
            {
                error = e.Message;
                if (!live.IsRevoked)
                {
                    tunnel.Reset(Http2ErrorCode.Cancel);
                    StreamSplicer.Reset(guest);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            error = e.Message;
            StreamSplicer.Reset(guest);
        }
        finally
        {
            await guest.DisposeAsync().ConfigureAwait(false);
            Log.FlowEnded(_logger, caller!.ToString(), port, error);
        }

        return 0;
    }
}
