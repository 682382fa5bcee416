using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Sidecar.Tunnel.Http2;
using Beemesh.Sidecar.Tunnel.Quic;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Opens tunnel streams to other sidecars: pooled HTTP/2 mTLS connections
/// (<see cref="Http2Connection"/>) per destination sidecar (endpoint and expected identity) and
/// SVID generation, on which every flow is a CONNECT stream. The server must present an SVID of exactly the directory's SPIFFE ID, or the handshake fails.
/// </summary>
/// <remarks>
/// <para>
/// Normally one connection per destination carries every flow. When each connection to it is at
/// the peer's SETTINGS_MAX_CONCURRENT_STREAMS, a new flow opens another (counted in
/// <see cref="MeshCounters.StreamLimitConnections"/>), up to
/// <see cref="TunnelClientPoolOptions.MaxConnectionsPerDestination"/>; past that, flows wait for a
/// stream to end, at most <see cref="TunnelClientPoolOptions.MaxWaitingFlows"/> of them, and one more
/// fails at once. A stream the peer refused before serving it (REFUSED_STREAM, or above the last
/// stream id of its GOAWAY) is retried on another connection. A connection that carried no flow for
/// <see cref="TunnelClientPoolOptions.IdleTimeout"/> is closed with a GOAWAY (counted in
/// <see cref="MeshCounters.IdleClosed"/>), so the extra connections go away as their flows drain.
/// </para>
/// <para>
/// Pool generations, one per SVID of our own: a tunnel connection carries the client SVID of its
/// handshake, so once our SVID has rotated no NEW flow may ride a connection handshaken with the old
/// one. Each destination therefore keeps a current generation (a connection handshaken while one
/// SVID was current, replaced by a new one with the same SVID when it closes); the first flow opened after a rotation starts a new
/// generation, and the old one is retired: it takes no new flows and is disposed (closing its
/// connection) when its last flow ends. Flows already on the old connection keep going; the peer
/// keeps them past the old SVID's expiry as long as we are still a mesh workload.
/// </para>
/// <para>
/// Removed nodes: a server whose SVID a revoked node issued (the injected check) fails the handshake,
/// and <see cref="CloseRevoked"/> closes the live connections to such servers, which ends every flow
/// on them, as the server side cuts its callers (continuous authorization in both directions).
/// </para>
/// <para>
/// Transports: a connection to a workload of another node runs over a stream of a QUIC connection to
/// that node when <see cref="Transports"/> chooses QUIC (this process and that node both run it), else
/// over TCP to the node's tunnel port; either way the TLS inside is end to end with the destination
/// workload's sidecar. A QUIC connect that fails sends that connection over TCP and keeps the node on
/// TCP for a while. Each connection is counted by transport in <see cref="MeshCounters.TunnelConnections"/>.
/// </para>
/// <para>
/// Generations were chosen over a <c>PooledConnectionLifetime</c> derived from the SVID TTL because
/// the rotation time is jittered and decided by the Workload API server (ours or SPIRE's), and the
/// TTL can change at run time: following the actual SVID is exact, costs one reference comparison
/// per new flow, and never opens a connection while the SVID is unchanged.
/// </para>
/// </remarks>
public sealed class TunnelClientPool : IDisposable
{
    private readonly X509Source _source;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<(IPEndPoint Endpoint, SpiffeId Id, string? ServerName), Destination> _destinations = new();
    private readonly ConcurrentDictionary<Generation, byte> _alive = new();
    private readonly Func<X509Certificate2, string?>? _revokedIssuer;
    private readonly QuicTunnelClient? _quic;
    private readonly ILogger _logger;
    private readonly TunnelClientPoolOptions _options;
    private readonly TimeProvider _idleClock;
    private long _connectionsOpened;
    private long _generationsStarted;
    private int _disposed;

    /// <summary>
    /// Creates a pool presenting the SVIDs of <paramref name="source"/>; handshakes are counted in
    /// <paramref name="counters"/>. <paramref name="revokedIssuer"/> names the revoked node that issued
    /// a server's SVID (null when none did): such servers are refused and their connections closed.
    /// With <paramref name="quic"/> (only where QUIC runs), connections to nodes that advertise QUIC
    /// use it as <paramref name="transports"/> chooses (by default: whenever it can, a failed node on
    /// TCP for <see cref="TunnelTransportChooser.DefaultTcpOnlyPeriod"/>).
    /// </summary>
    public TunnelClientPool(X509Source source, MeshCounters? counters = null, Func<X509Certificate2, string?>? revokedIssuer = null,
        QuicTunnelClient? quic = null, TunnelTransportChooser? transports = null, ILogger? logger = null, TunnelClientPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _options = options ?? new TunnelClientPoolOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxConnectionsPerDestination, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxWaitingFlows, nameof(options));
        if (_options.IdleTimeout is { } idle)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idle, TimeSpan.Zero, nameof(options));
        }

        _source = source;
        _revokedIssuer = revokedIssuer;
        _time = source.TimeProvider;
        _quic = quic;
        _logger = logger ?? NullLogger.Instance;
        Counters = counters ?? new MeshCounters();
        Transports = transports ?? new TunnelTransportChooser(quic is not null, _time);
        _idleClock = _options.TimeProvider ?? _time;
    }

    /// <summary>Chooses TCP or QUIC for each new connection.</summary>
    public TunnelTransportChooser Transports { get; }

    /// <summary>The QUIC side, when QUIC runs in this process.</summary>
    public QuicTunnelClient? Quic => _quic;

    /// <summary>The counters client handshakes go to.</summary>
    public MeshCounters Counters { get; }

    /// <summary>TCP connections (hence TLS handshakes) opened so far, over all destinations.</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>Pool generations started so far (one per destination and SVID of ours that carried a flow).</summary>
    public long GenerationsStarted => Interlocked.Read(ref _generationsStarted);

    /// <summary>Generations not yet disposed: the current ones plus retired ones that still carry flows.</summary>
    public int LiveGenerations => _alive.Count;

    /// <summary>Pooled connections that take new flows now, over all destinations and generations.</summary>
    public int OpenConnections => _alive.Keys.Sum(static g => g.OpenConnections);

    /// <summary>
    /// Opens a flow to <paramref name="peer"/>'s mesh address, port <paramref name="port"/>.
    /// Throws <see cref="TunnelRefusedException"/> when the peer refuses (403: not authorized) and
    /// <see cref="HttpRequestException"/> when the connection or its mTLS handshake fails, or when every
    /// connection to the destination is at the peer's stream limit, no more may be opened and
    /// <see cref="TunnelClientPoolOptions.MaxWaitingFlows"/> flows already wait.
    /// </summary>
    public async Task<TunnelStream> OpenAsync(MeshPeer peer, int port, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Destination destination = _destinations.GetOrAdd((peer.TunnelEndpoint, peer.SpiffeId, peer.ServerName), static (key, pool) => new Destination(pool, key.Endpoint, key.Id, key.ServerName), this);
        Generation generation = destination.Acquire(_source.Current.DefaultSvid.Certificate, peer);
        // :authority names the destination, not the tunnel server: one connection carries flows
        // to every port of the workload behind it.
        string authority = new IPEndPoint(peer.MeshAddress, port).ToString();
        Http2Stream? stream = null;
        try
        {
            stream = await generation.OpenStreamAsync(authority, cancellationToken).ConfigureAwait(false);

            if (stream.Status != 200)
            {
                throw new TunnelRefusedException((HttpStatusCode)stream.Status);
            }

            return new TunnelStream(stream, generation.Release);
        }
        catch
        {
            stream?.Dispose();
            generation.Release();
            throw;
        }
    }

    /// <summary>
    /// Closes every live connection to a server whose SVID was issued by a node the injected check now
    /// names as revoked (every flow on it ends); returns how many were closed.
    /// </summary>
    public int CloseRevoked()
    {
        if (_revokedIssuer is null)
        {
            return 0;
        }

        int closed = 0;
        foreach (Generation generation in _alive.Keys)
        {
            // Closing a connection fails every stream on it, and each flow's splice resets its
            // guest connection.
            closed += generation.CloseRevoked(_revokedIssuer);
        }

        return closed;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (Generation generation in _alive.Keys)
        {
            generation.Dispose();
        }

        _alive.Clear();
        _destinations.Clear();
    }

    private Generation StartGeneration(IPEndPoint endpoint, SpiffeId expected, string? serverName, X509Certificate2 svid)
    {
        Interlocked.Increment(ref _generationsStarted);
        var generation = new Generation(this, endpoint, expected, serverName, svid);
        _alive.TryAdd(generation, 0);
        if (Volatile.Read(ref _disposed) != 0)
        {
            generation.Dispose();
        }

        return generation;
    }

    /// <summary>
    /// The byte stream a new connection's TLS runs over: a QUIC stream to the peer's node when the
    /// chooser says so and the QUIC connection can be made, else a TCP connection to
    /// <paramref name="endpoint"/>.
    /// </summary>
    private async Task<Stream> OpenTransportAsync(IPEndPoint endpoint, MeshPeer? peer, CancellationToken cancellationToken)
    {
        if (_quic is not null && peer is not null && Transports.Choose(peer) == TunnelTransport.Quic)
        {
            try
            {
                Stream stream = await _quic.OpenStreamAsync(peer, cancellationToken).ConfigureAwait(false);
                Counters.CountTunnelConnection(TunnelTransport.Quic);
                return stream;
            }
            catch (QuicTunnelConnectException e)
            {
                DateTimeOffset until = Transports.QuicFailed(peer);
                Counters.CountQuicFallback();
                Log.QuicFallback(_logger, peer.NodeName ?? "?", peer.QuicEndpoint?.ToString() ?? "?", e.InnerException?.Message ?? e.Message, until);
            }
        }

        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        TunnelKeepAlive.ConfigureSidecarSocket(socket, _options.KeepAliveInterval, _options.KeepAliveTimeout);
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new HttpRequestException(HttpRequestError.ConnectionError, e.Message, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        Counters.CountTunnelConnection(TunnelTransport.Tcp);
        return new SocketTransport(socket);
    }

    /// <summary>Connects and runs the mTLS handshake; the server must be <paramref name="expected"/>.</summary>
    private async Task<(SslStream Tls, X509Certificate2? Server, bool Direct)> HandshakeAsync(IPEndPoint endpoint, SpiffeId expected, string? serverName, MeshPeer? peer, CancellationToken cancellationToken)
    {
        SslClientAuthenticationOptions ssl = SpiffeTls.CreateClientOptions(_source, id => id == expected);
        ssl.ApplicationProtocols = [SslApplicationProtocol.Http2];
        if (_revokedIssuer is not null && ssl.RemoteCertificateValidationCallback is { } validate)
        {
            // After the SPIFFE checks (which keep the intermediates the issuer check reads).
            ssl.RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
                validate(sender, certificate, chain, errors) && (certificate is not X509Certificate2 server || _revokedIssuer(server) is null);
        }

        // Another node's tunnel port routes by this name; the peer is still checked by its SPIFFE ID.
        ssl.TargetHost = serverName ?? string.Empty;
        Interlocked.Increment(ref _connectionsOpened);
        Stream transport = await OpenTransportAsync(endpoint, peer, cancellationToken).ConfigureAwait(false);
        long start = _time.GetTimestamp();
        var tls = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(ssl, cancellationToken).ConfigureAwait(false);
        }
        catch (AuthenticationException e)
        {
            Counters.ClientHandshakes.Fail();
            await tls.DisposeAsync().ConfigureAwait(false);
            throw new HttpRequestException(HttpRequestError.SecureConnectionError, e.Message, e);
        }
        catch (Exception e) when (e is IOException or SocketException or System.Net.Quic.QuicException)
        {
            Counters.ClientHandshakes.Fail();
            await tls.DisposeAsync().ConfigureAwait(false);
            throw new HttpRequestException(HttpRequestError.ConnectionError, e.Message, e);
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        Counters.ClientHandshakes.Observe(_time.GetElapsedTime(start));
        var server = tls.RemoteCertificate as X509Certificate2;
        // A revocation installed during the handshake: CloseRevoked may have run before the connection was known.
        if (server is not null && _revokedIssuer?.Invoke(server) is { } node)
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw new HttpRequestException(HttpRequestError.SecureConnectionError, $"the server's SVID was issued by node {node}, which was removed from the mesh");
        }

        // From here the connection's reader thread blocks in recv and writers send themselves.
        bool direct = transport is SocketTransport socket && socket.EnterDirectMode();
        return (tls, server, direct);
    }

    /// <summary>One destination sidecar: its current generation.</summary>
    private sealed class Destination(TunnelClientPool pool, IPEndPoint endpoint, SpiffeId expected, string? serverName)
    {
        private readonly Lock _gate = new();
        private Generation? _current;

        /// <summary>The generation for our SVID <paramref name="svid"/>, with one more flow counted on it; <paramref name="peer"/> is the destination as the directory knows it now.</summary>
        public Generation Acquire(X509Certificate2 svid, MeshPeer peer)
        {
            Generation? retired = null;
            Generation current;
            lock (_gate)
            {
                if (_current is null || !_current.IsFor(svid))
                {
                    retired = _current;
                    _current = pool.StartGeneration(endpoint, expected, serverName, svid);
                }

                current = _current;
                current.AddFlow();
                current.Peer = peer;
            }

            retired?.Retire();
            return current;
        }
    }

    /// <summary>One pooled connection and the SVID its server presented.</summary>
    private sealed record Lane(Http2Connection Connection, X509Certificate2? Server);

    /// <summary>
    /// The connections to one destination handshaken while one SVID of ours was current (more when
    /// the first ones are at the peer's stream limit, new ones when they close), and the number of
    /// flows on them. Disposed once retired and without flows (or with the pool), which closes the
    /// connections.
    /// </summary>
    private sealed class Generation(TunnelClientPool pool, IPEndPoint endpoint, SpiffeId expected, string? serverName, X509Certificate2 svid) : IDisposable
    {
        // A stream the peer refused unserved is retried; a peer refusing every one is not tried forever.
        private const int MaxRefusals = 16;

        private readonly Lock _gate = new();
        private readonly List<Lane> _lanes = [];
        private int _handshaking;
        private int _waiting;
        private TaskCompletionSource? _changed;
        private int _flows;
        private bool _retired;
        private bool _disposed;
        private volatile MeshPeer? _peer;

        /// <summary>The destination as last looked up: its node's QUIC endpoint may come or go while the generation lives.</summary>
        public MeshPeer? Peer
        {
            get => _peer;
            set => _peer = value;
        }

        /// <summary>Connections that take new flows now.</summary>
        public int OpenConnections
        {
            get
            {
                lock (_gate)
                {
                    return _lanes.Count(static l => l.Connection.IsOpen);
                }
            }
        }

        // Same object in the common case; otherwise the same issuer and serial number (a bundle-only
        // update of the Workload API stream resends the same SVID as new objects).
        public bool IsFor(X509Certificate2 certificate) => ReferenceEquals(certificate, svid) || certificate.Equals(svid);

        /// <summary>
        /// A CONNECT stream to <paramref name="authority"/> whose response arrived: on a connection
        /// with room, else on a new one (one handshake at a time), else after a stream ends.
        /// </summary>
        public async Task<Http2Stream> OpenStreamAsync(string authority, CancellationToken cancellationToken)
        {
            int refusals = 0;
            while (true)
            {
                Http2Stream? stream = await StreamAsync(authority, cancellationToken).ConfigureAwait(false);
                try
                {
                    await stream.ResponseTask.WaitAsync(cancellationToken).ConfigureAwait(false);
                    return stream;
                }
                catch (Http2StreamException e) when (e.ErrorCode == Http2ErrorCode.RefusedStream && ++refusals < MaxRefusals)
                {
                    // Never served (RFC 9113 section 8.7): safe on another connection, or on this
                    // one once the peer's SETTINGS have lowered its limit.
                    stream.Dispose();
                }
                catch (IOException e) when (e is not Http2StreamException)
                {
                    stream.Dispose();
                    throw new HttpRequestException(HttpRequestError.ConnectionError, e.Message, e);
                }
                catch
                {
                    stream.Dispose();
                    throw;
                }
            }
        }

        private async Task<Http2Stream> StreamAsync(string authority, CancellationToken cancellationToken)
        {
            while (true)
            {
                Task? wait;
                bool streamLimit;
                lock (_gate)
                {
                    ObjectDisposedException.ThrowIf(_disposed, this);
                    bool full = false;
                    for (int i = _lanes.Count - 1; i >= 0; i--)
                    {
                        Http2Connection connection = _lanes[i].Connection;
                        if (!connection.IsOpen)
                        {
                            // Closed or going away: its streams finish on their own.
                            _lanes.RemoveAt(i);
                            if (connection.ActiveStreams == 0)
                            {
                                connection.Abort();
                            }
                        }
                    }

                    foreach (Lane lane in _lanes)
                    {
                        if (lane.Connection.TryStartConnect(authority) is { } stream)
                        {
                            return stream;
                        }

                        full = true;
                    }

                    if (_handshaking == 0 && _lanes.Count < pool._options.MaxConnectionsPerDestination)
                    {
                        _handshaking++;
                        streamLimit = full;
                        wait = null;
                    }
                    else
                    {
                        if (_waiting >= pool._options.MaxWaitingFlows)
                        {
                            throw new HttpRequestException(HttpRequestError.ConnectionError,
                                $"the tunnel to {expected} is full: {_lanes.Count} connections at the peer's stream limit and {_waiting} flows waiting");
                        }

                        _waiting++;
                        streamLimit = false;
                        wait = (_changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                    }
                }

                if (wait is not null)
                {
                    try
                    {
                        await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        lock (_gate)
                        {
                            _waiting--;
                        }
                    }

                    continue;
                }

                Http2Stream? opened = await ConnectAsync(authority, streamLimit, cancellationToken).ConfigureAwait(false);
                if (opened is not null)
                {
                    return opened;
                }
            }
        }

        /// <summary>Makes one more connection and opens a stream on it (null when others took its room first).</summary>
        private async Task<Http2Stream?> ConnectAsync(string authority, bool streamLimit, CancellationToken cancellationToken)
        {
            Http2Connection connection;
            X509Certificate2? server;
            try
            {
                (SslStream tls, server, bool direct) = await pool.HandshakeAsync(endpoint, expected, serverName, _peer, cancellationToken).ConfigureAwait(false);
                connection = Http2Connection.StartClient(tls, new Http2ConnectionOptions
                {
                    ReadThread = direct,
                    // The keep-alive runs on the wall clock: it measures the network, not SVID lifetimes.
                    KeepAliveInterval = pool._options.KeepAliveInterval,
                    KeepAliveTimeout = pool._options.KeepAliveTimeout,
                    TimeProvider = pool._options.KeepAliveTimeProvider ?? TimeProvider.System,
                    IdleTimeout = pool._options.IdleTimeout,
                    IdleTimeProvider = pool._idleClock,
                    OnIdleClose = _ => pool.Counters.CountIdleClosed(),
                    OnLost = (_, reason, flows) =>
                    {
                        pool.Counters.CountTunnelLost(reason, flows);
                        Log.TunnelLost(pool._logger, expected.ToString(), MeshCounters.LostLabel(reason), flows);
                    },
                });
            }
            catch
            {
                lock (_gate)
                {
                    _handshaking--;
                    Signal();
                }

                throw;
            }

            if (streamLimit)
            {
                pool.Counters.CountStreamLimitConnection();
            }

            Http2Stream? stream;
            bool disposed;
            lock (_gate)
            {
                _handshaking--;
                disposed = _disposed;
                if (!disposed)
                {
                    _lanes.Add(new Lane(connection, server));
                }

                stream = disposed ? null : connection.TryStartConnect(authority);
                Signal();
            }

            if (disposed)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw new ObjectDisposedException(nameof(TunnelClientPool));
            }

            return stream;
        }

        /// <summary>Wakes the flows waiting for room; under the gate.</summary>
        private void Signal()
        {
            _changed?.TrySetResult();
            _changed = null;
        }

        /// <summary>Closes the connections whose server SVID <paramref name="revokedIssuer"/> names (every flow on them fails); how many were open.</summary>
        public int CloseRevoked(Func<X509Certificate2, string?> revokedIssuer)
        {
            List<Http2Connection> revoked = [];
            lock (_gate)
            {
                for (int i = _lanes.Count - 1; i >= 0; i--)
                {
                    if (_lanes[i].Server is { } server && revokedIssuer(server) is not null)
                    {
                        revoked.Add(_lanes[i].Connection);
                        _lanes.RemoveAt(i);
                    }
                }
            }

            int closed = 0;
            foreach (Http2Connection connection in revoked)
            {
                closed += connection.IsOpen || connection.ActiveStreams > 0 ? 1 : 0;
                connection.Abort();
            }

            return closed;
        }

        public void AddFlow()
        {
            lock (_gate)
            {
                _flows++;
            }
        }

        public void Release()
        {
            lock (_gate)
            {
                _flows--;
                Signal();
                if (!_retired || _flows > 0)
                {
                    return;
                }
            }

            Dispose();
        }

        public void Retire()
        {
            lock (_gate)
            {
                _retired = true;
                if (_flows > 0)
                {
                    return;
                }
            }

            Dispose();
        }

        public void Dispose()
        {
            Lane[] lanes;
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
                lanes = [.. _lanes];
                _lanes.Clear();
                Signal();
            }

            pool._alive.TryRemove(this, out _);
            foreach (Lane lane in lanes)
            {
                lane.Connection.Abort();
            }
        }
    }
}
