using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Quic;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Agent.Tunnel;

/// <summary>
/// The node's QUIC tunnel endpoint (UDP, by default the tunnel port's number): the QUIC side of
/// <see cref="SniTunnelRouter"/>. A caller's sidecar holds one QUIC connection to this node, mutually
/// authenticated between its workload SVID (client) and this node's node SVID (server), with ALPN
/// <see cref="QuicTunnelProtocol.ApplicationProtocol"/>. Each bidirectional stream on it starts with a
/// <see cref="TunnelStreamHeader"/> naming a local workload; the router connects to that workload's
/// sidecar tunnel endpoint and relays the rest of the stream both ways without reading it: the
/// bytes are the end-to-end TLS between the two workloads' sidecars, exactly what a TCP connection
/// to the tunnel port carries after its ClientHello, so mutual TLS between the workloads' SVIDs is
/// never terminated here and the destination sidecar authorizes the caller as for TCP.
/// </summary>
/// <remarks>
/// <para>
/// Callers: a client certificate is required; it must be an X509-SVID of this trust domain (chained
/// to the root, through the node CA the client sends) whose SPIFFE ID names a workload
/// (<c>/ns/…</c>), not issued by a node removed from the mesh, and the connection must not come from
/// the address of one (<see cref="RefusePeers"/>). <see cref="RefuseNodes"/> and
/// <see cref="RefusePeers"/> also close the live connections they now exclude, ending every stream
/// on them, as the TCP router cuts its splices; the sidecars behind both also cut by issuer.
/// </para>
/// <para>
/// Refused streams are aborted with an application error code (<see cref="QuicTunnelProtocol"/>) and
/// counted in <see cref="Counters"/>; a refused stream costs only itself, the connection keeps serving.
/// Requires libmsquic: create one only when <see cref="IsSupported"/>.
/// </para>
/// </remarks>
public sealed class QuicTunnelRouter : IAsyncDisposable
{
    /// <summary>Most streams a caller may have open at once on one connection, unless <see cref="StartAsync"/> is given another limit.</summary>
    public const int DefaultMaxStreamsPerConnection = 256;

    private QuicListener _listener = null!;
    private readonly Func<string, IPEndPoint?> _resolve;
    private readonly Func<SslStreamCertificateContext> _certificate;
    private readonly X509Certificate2Collection _bundle;
    private readonly string _trustDomain;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<QuicConnection, Caller> _connections = new();
    // Callers being handshaken, by connection: an entry lives as long as its connection object, so
    // a handshake that fails (and never reaches the accept loop) leaves nothing behind.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<QuicConnection, Caller> _handshaking = [];
    private readonly ConcurrentDictionary<Task, byte> _tasks = new();
    private volatile IReadOnlySet<IPAddress> _refusedPeers = new HashSet<IPAddress>();
    private volatile IReadOnlySet<string> _refusedNodes = new HashSet<string>(StringComparer.Ordinal);
    private long _liveStreams;
    private Task? _accepting;
    private int _disposed;

    private QuicTunnelRouter(Func<SslStreamCertificateContext> certificate, X509Certificate2Collection bundle, string trustDomain,
        Func<string, IPEndPoint?> resolve, TimeProvider time, ILogger logger)
    {
        _certificate = certificate;
        _bundle = bundle;
        _trustDomain = trustDomain;
        _resolve = resolve;
        _time = time;
        _logger = logger;
    }

    /// <summary>Whether QUIC can run in this process (libmsquic was found and loads).</summary>
    public static bool IsSupported => QuicListener.IsSupported;

    /// <summary>The bound UDP endpoint (with the actual port when 0 was asked).</summary>
    public IPEndPoint Endpoint { get; private set; } = null!;

    /// <summary>How long a stream has to send its whole header (default 10 s, as the TCP router's ClientHello).</summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a connection to the local sidecar may take (default 5 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a relayed stream may stay half-closed (one side ended its writing, the other goes on)
    /// before both sides are reset (counted as <c>cut_half_closed</c>); default 20 s, the sidecars'
    /// keep-alive bound, as the TCP relay's <see cref="SniTunnelRouter.HalfClosedTimeout"/>.
    /// </summary>
    public TimeSpan HalfClosedTimeout { get; init; } = TunnelKeepAlive.DefaultInterval + TunnelKeepAlive.DefaultTimeout;

    /// <summary>
    /// Counters by name: <c>connections_accepted</c>, <c>connections_refused</c> (handshake failed:
    /// no or a bad certificate, another trust domain, not a workload, a removed node's issuer or
    /// address), <c>cut_revoked_peer</c> (live connections closed by a refusal), and per stream
    /// <c>routed</c>, <c>refused_unknown_name</c>, <c>refused_malformed</c>, <c>refused_timeout</c>,
    /// <c>refused_unreachable</c>, <c>cut_half_closed</c> (reset after <see cref="HalfClosedTimeout"/> half-closed).
    /// </summary>
    public IReadOnlyDictionary<string, long> Counters => _counters;

    /// <summary>Every name <see cref="Counters"/> may hold, in a fixed order.</summary>
    public static IReadOnlyList<string> CounterNames { get; } =
    [
        "connections_accepted", "connections_refused", "cut_revoked_peer",
        "routed", "refused_unknown_name", "refused_malformed", "refused_timeout", "refused_unreachable", "cut_half_closed",
    ];

    /// <summary>QUIC connections open now.</summary>
    public int LiveConnections => _connections.Count;

    /// <summary>Streams being relayed now.</summary>
    public long LiveStreams => Interlocked.Read(ref _liveStreams);

    /// <summary>
    /// Listens on <paramref name="endpoint"/> (UDP). <paramref name="certificate"/> gives the node SVID
    /// context to present (asked per connection, so a renewal takes effect on the next one);
    /// <paramref name="root"/> is the trust domain's root, the only anchor callers' SVIDs are checked
    /// against; <paramref name="resolve"/> maps a lower-case tunnel server name to the local sidecar's
    /// tunnel endpoint, or null when no local workload has that name. Throws
    /// <see cref="PlatformNotSupportedException"/> without libmsquic and
    /// <see cref="InvalidOperationException"/> when the endpoint cannot be bound.
    /// </summary>
    public static async Task<QuicTunnelRouter> StartAsync(
        IPEndPoint endpoint, Func<SslStreamCertificateContext> certificate, X509Certificate2 root, string trustDomain, Func<string, IPEndPoint?> resolve,
        TimeProvider? time = null, ILogger? logger = null, int maxStreamsPerConnection = DefaultMaxStreamsPerConnection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(root);
        ArgumentException.ThrowIfNullOrEmpty(trustDomain);
        ArgumentNullException.ThrowIfNull(resolve);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStreamsPerConnection, 1);
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException(QuicTunnelProtocol.NotSupportedMessage);
        }

        // Made before the listener, which may hand it a connection as soon as it listens.
        var router = new QuicTunnelRouter(certificate, [X509CertificateLoader.LoadCertificate(root.RawData)], trustDomain, resolve,
            time ?? TimeProvider.System, logger ?? NullLogger.Instance);
        try
        {
            router._listener = await QuicListener.ListenAsync(
                new QuicListenerOptions
                {
                    ListenEndPoint = endpoint,
                    ApplicationProtocols = [QuicTunnelProtocol.ApplicationProtocol],
                    ListenBacklog = 512,
                    ConnectionOptionsCallback = (connection, _, _) => ValueTask.FromResult(router.ConnectionOptions(connection, maxStreamsPerConnection)),
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or SocketException)
        {
            router._stop.Dispose();
            throw new InvalidOperationException($"cannot listen for QUIC on udp {endpoint}: {e.Message}", e);
        }

        router.Endpoint = router._listener.LocalEndPoint;
        router._accepting = Task.Run(router.AcceptLoopAsync);
        return router;
    }

    /// <summary>
    /// Refuses connections from <paramref name="addresses"/> (those of nodes removed from the mesh)
    /// from now on, replacing the previous set, and closes the live ones from them; returns how many
    /// were closed.
    /// </summary>
    public int RefusePeers(IReadOnlySet<IPAddress> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        var set = new HashSet<IPAddress>(addresses.Select(Normalize));
        _refusedPeers = set;
        return Cut(caller => set.Contains(caller.Address), "its node was removed from the mesh");
    }

    /// <summary>
    /// Refuses callers whose SVID a node in <paramref name="nodeNames"/> issued (nodes removed from the
    /// mesh) from now on, replacing the previous set, and closes the live connections of such callers;
    /// returns how many were closed.
    /// </summary>
    public int RefuseNodes(IEnumerable<string> nodeNames)
    {
        ArgumentNullException.ThrowIfNull(nodeNames);
        var set = new HashSet<string>(nodeNames, StringComparer.Ordinal);
        _refusedNodes = set;
        return Cut(caller => caller.IssuerNode is { } node && set.Contains(node), "the node that issued the caller's SVID was removed from the mesh");
    }

    private int Cut(Func<Caller, bool> refused, string reason)
    {
        int cut = 0;
        foreach ((QuicConnection connection, Caller caller) in _connections)
        {
            if (refused(caller) && caller.TryCut())
            {
                cut++;
                Count("cut_revoked_peer");
                TunnelRouterLog.QuicRefused(_logger, caller.Address.ToString(), reason);
                Track(CloseAsync(connection, QuicTunnelProtocol.ErrorRevoked));
            }
        }

        return cut;
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private void Count(string name) => _counters.AddOrUpdate(name, 1, static (_, v) => v + 1);

    private QuicServerConnectionOptions ConnectionOptions(QuicConnection connection, int maxStreams)
    {
        var caller = new Caller(Normalize(connection.RemoteEndPoint.Address));
        _handshaking.AddOrUpdate(connection, caller);
        return new QuicServerConnectionOptions
        {
            DefaultStreamErrorCode = QuicTunnelProtocol.ErrorClosed,
            DefaultCloseErrorCode = QuicTunnelProtocol.ErrorClosed,
            MaxInboundBidirectionalStreams = maxStreams,
            MaxInboundUnidirectionalStreams = 0,
            IdleTimeout = QuicTunnelProtocol.IdleTimeout,
            KeepAliveInterval = QuicTunnelProtocol.KeepAliveInterval,
            ServerAuthenticationOptions = new SslServerAuthenticationOptions
            {
                ApplicationProtocols = [QuicTunnelProtocol.ApplicationProtocol],
                EnabledSslProtocols = SslProtocols.Tls13,
                ClientCertificateRequired = true,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                CertificateChainPolicy = new X509ChainPolicy
                {
                    RevocationMode = X509RevocationMode.NoCheck,
                    DisableCertificateDownloads = true,
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                },
                ServerCertificateContext = _certificate(),
                RemoteCertificateValidationCallback = (_, certificate, chain, _) => Authenticate(caller, certificate, chain),
            },
        };
    }

    // The caller's SVID: of this trust domain, a workload, not issued by a removed node; from an address not refused.
    private bool Authenticate(Caller caller, X509Certificate? certificate, X509Chain? chain)
    {
        if (certificate is not X509Certificate2 leaf || _refusedPeers.Contains(caller.Address))
        {
            return false;
        }

        X509Certificate2Collection? sent = chain?.ChainPolicy.ExtraStore;
        if (SvidValidator.Validate(leaf, sent, _bundle, _trustDomain, _time.GetUtcNow(), out SpiffeId? id) != SvidValidationResult.Valid
            || !id!.Path.StartsWith("/ns/", StringComparison.Ordinal))
        {
            return false;
        }

        string? issuer = null;
        if (sent is not null)
        {
            foreach (X509Certificate2 other in sent)
            {
                if (!other.Equals(leaf) && NodeNameOf(other) is { } node)
                {
                    issuer = node;
                }
            }
        }

        if (issuer is not null && _refusedNodes.Contains(issuer))
        {
            return false;
        }

        caller.Authenticated(id, issuer);
        return true;
    }

    // The node NAME of a node CA (URI SAN spiffe://TD/node/NAME), else null.
    private string? NodeNameOf(X509Certificate2 certificate)
    {
        const string prefix = "/node/";
        if (SvidValidator.TryGetSpiffeId(certificate, out SpiffeId? id) != SvidValidationResult.Valid
            || id!.TrustDomain != _trustDomain || !id.Path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }

        string name = id.Path[prefix.Length..];
        return name.Length == 0 || name.Contains('/', StringComparison.Ordinal) ? null : name;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            QuicConnection connection;
            try
            {
                connection = await _listener.AcceptConnectionAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (Exception e) when (e is QuicException or AuthenticationException or IOException)
            {
                // A handshake that failed (its certificate was refused, or it timed out) costs only itself.
                Count("connections_refused");
                TunnelRouterLog.QuicRefused(_logger, "?", e.Message);
                continue;
            }

            if (!_handshaking.TryGetValue(connection, out Caller? caller) || caller.Id is null)
            {
                Count("connections_refused");
                Track(CloseAsync(connection, QuicTunnelProtocol.ErrorRefused));
                continue;
            }

            _handshaking.Remove(connection);
            _connections[connection] = caller;
            Count("connections_accepted");
            // A refusal set during the handshake: the cut may have run before the caller was accepted.
            if (_refusedPeers.Contains(caller.Address) || (caller.IssuerNode is { } node && _refusedNodes.Contains(node)))
            {
                if (caller.TryCut())
                {
                    Count("cut_revoked_peer");
                }

                Track(CloseAsync(connection, QuicTunnelProtocol.ErrorRevoked));
                continue;
            }

            Track(ServeConnectionAsync(connection, caller));
        }
    }

    private void Track(Task task)
    {
        _tasks.TryAdd(task, 0);
        task.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), _tasks, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task ServeConnectionAsync(QuicConnection connection, Caller caller)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                QuicStream stream = await connection.AcceptInboundStreamAsync(_stop.Token).ConfigureAwait(false);
                Track(ServeStreamAsync(stream, caller));
            }
        }
        catch (Exception e) when (e is QuicException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The caller closed the connection, it idled out, or the router stops.
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            await CloseAsync(connection, QuicTunnelProtocol.ErrorClosed).ConfigureAwait(false);
        }
    }

    private async Task ServeStreamAsync(QuicStream stream, Caller caller)
    {
        string peer = caller.Address.ToString();
        // The header first, in a small buffer (a stream that never sends one holds only that); the
        // relay's buffer is taken once the stream is routed.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(TunnelStreamHeader.MaxLength);
        byte[]? relay = null;
        Socket? upstream = null;
        Interlocked.Increment(ref _liveStreams);
        try
        {
            int length = 0;
            TunnelStreamHeader header;
            int consumed;
            using (var timeout = new CancellationTokenSource(HeaderTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stop.Token))
            {
                while (true)
                {
                    System.Buffers.OperationStatus status = TunnelStreamHeader.TryParse(buffer.AsSpan(0, length), out header, out consumed, out string? error);
                    if (status == System.Buffers.OperationStatus.Done)
                    {
                        break;
                    }

                    if (status == System.Buffers.OperationStatus.InvalidData)
                    {
                        Refuse(stream, peer, "refused_malformed", QuicTunnelProtocol.ErrorMalformed, $"bad stream header: {error}");
                        return;
                    }

                    int read;
                    try
                    {
                        // Reads at most up to the longest header; what follows it in the same read is the flow's.
                        read = await stream.ReadAsync(buffer.AsMemory(length, TunnelStreamHeader.MaxLength - length), linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                    {
                        Refuse(stream, peer, "refused_timeout", QuicTunnelProtocol.ErrorTimeout, "no complete stream header in time");
                        return;
                    }

                    if (read == 0)
                    {
                        Refuse(stream, peer, "refused_malformed", QuicTunnelProtocol.ErrorMalformed, "stream ended before a complete header");
                        return;
                    }

                    length += read;
                }
            }

            IPEndPoint? target = _resolve(header.Name);
            if (target is null)
            {
                Refuse(stream, peer, "refused_unknown_name", QuicTunnelProtocol.ErrorUnknownName, $"no local workload named {header.Name}");
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
                    Refuse(stream, peer, "refused_unreachable", QuicTunnelProtocol.ErrorUnreachable, $"sidecar of {header.Name} at {target} unreachable");
                    return;
                }
            }

            // Counted before any byte is passed on, so whoever sees the flow at the sidecar also sees the count.
            Count("routed");
            if (length > consumed)
            {
                await upstream.SendAsync(buffer.AsMemory(consumed, length - consumed), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }

            relay = ArrayPool<byte>.Shared.Rent(64 * 1024);
            Socket upstreamSocket = upstream;
            using var halfClosed = new HalfClosedBound(HalfClosedTimeout, _time, () =>
            {
                Count("cut_half_closed");
                try
                {
                    stream.Abort(QuicAbortDirection.Both, QuicTunnelProtocol.ErrorClosed);
                }
                catch (ObjectDisposedException)
                {
                }

                upstreamSocket.Close(0);
            });
            Task up = CopyUpAsync(stream, upstream, relay, halfClosed);
            Task down = CopyDownAsync(upstream, stream, halfClosed);
            Task first = await Task.WhenAny(up, down).ConfigureAwait(false);
            if (first.IsFaulted)
            {
                stream.Abort(QuicAbortDirection.Both, QuicTunnelProtocol.ErrorClosed);
                upstream.Close(0);
            }

            await Task.WhenAll(up, down).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The caller, its connection or the sidecar went away, or the router stops: both ends close below.
            stream.Abort(QuicAbortDirection.Both, QuicTunnelProtocol.ErrorClosed);
        }
        finally
        {
            Interlocked.Decrement(ref _liveStreams);
            ArrayPool<byte>.Shared.Return(buffer);
            if (relay is not null)
            {
                ArrayPool<byte>.Shared.Return(relay);
            }

            upstream?.Dispose();
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    // Caller to sidecar; the caller's end of its writing becomes a FIN to the sidecar (the
    // half-close bound armed first, so whoever sees the FIN sees it armed).
    private async Task CopyUpAsync(QuicStream from, Socket to, byte[] buffer, HalfClosedBound halfClosed)
    {
        int read;
        while ((read = await from.ReadAsync(buffer, _stop.Token).ConfigureAwait(false)) > 0)
        {
            await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token).ConfigureAwait(false);
        }

        halfClosed.DirectionEnded();

        try
        {
            to.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
        }
    }

    // Sidecar to caller; the sidecar's FIN completes the stream's writing side.
    private async Task CopyDownAsync(Socket from, QuicStream to, HalfClosedBound halfClosed)
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(chunk, SocketFlags.None, _stop.Token).ConfigureAwait(false)) > 0)
            {
                await to.WriteAsync(chunk.AsMemory(0, read), _stop.Token).ConfigureAwait(false);
            }

            halfClosed.DirectionEnded();
            to.CompleteWrites();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private void Refuse(QuicStream stream, string peer, string counter, long errorCode, string reason)
    {
        Count(counter);
        TunnelRouterLog.QuicRefused(_logger, peer, reason);
        stream.Abort(QuicAbortDirection.Both, errorCode);
    }

    private static async Task CloseAsync(QuicConnection connection, long errorCode)
    {
        try
        {
            await connection.CloseAsync(errorCode).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or ObjectDisposedException or OperationCanceledException)
        {
        }

        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Stops accepting, closes every connection (ending their streams) and waits for them to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _listener.DisposeAsync().ConfigureAwait(false);
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(false);
        }

        foreach (QuicConnection connection in _connections.Keys)
        {
            Track(CloseAsync(connection, QuicTunnelProtocol.ErrorClosed));
        }

        try
        {
            await Task.WhenAll(_tasks.Keys).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QuicException or IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }

        _stop.Dispose();
    }

    /// <summary>One QUIC connection's caller: its address, and once authenticated its SPIFFE ID and the node that issued its SVID.</summary>
    private sealed class Caller(IPAddress address)
    {
        private int _cut;

        public IPAddress Address => address;

        public SpiffeId? Id { get; private set; }

        public string? IssuerNode { get; private set; }

        public void Authenticated(SpiffeId? id, string? issuerNode)
        {
            Id = id;
            IssuerNode = issuerNode;
        }

        /// <summary>True the first time only.</summary>
        public bool TryCut() => Interlocked.Exchange(ref _cut, 1) == 0;
    }
}
