using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Opens tunnel streams to other sidecars: ONE pooled HTTP/2 mTLS connection per destination
/// sidecar (endpoint and expected identity) and SVID generation, on which every flow is a CONNECT
/// stream. The server must present an SVID of exactly the directory's SPIFFE ID, or the handshake fails.
/// </summary>
/// <remarks>
/// <para>
/// Pool generations, one per SVID of our own: a tunnel connection carries the client SVID of its
/// handshake, so once our SVID has rotated no NEW flow may ride a connection handshaken with the old
/// one. Each destination therefore keeps a current generation (an HTTP client whose connections were
/// all handshaken while one SVID was current); the first flow opened after a rotation starts a new
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
/// Generations were chosen over a <c>PooledConnectionLifetime</c> derived from the SVID TTL because
/// the rotation time is jittered and decided by the Workload API server (ours or SPIRE's), and the
/// TTL can change at run time: following the actual SVID is exact, costs one reference comparison
/// per new flow, and never opens a connection while the SVID is unchanged.
/// </para>
/// </remarks>
public sealed class TunnelClientPool : IDisposable
{
    private static readonly HttpRequestOptionsKey<long> ConnectedAt = new("beemesh.connected-at");

    private readonly X509Source _source;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<(IPEndPoint Endpoint, SpiffeId Id, string? ServerName), Destination> _destinations = new();
    private readonly ConcurrentDictionary<Generation, byte> _alive = new();
    private readonly Func<X509Certificate2, string?>? _revokedIssuer;

    // Live TLS streams to servers behind a node's tunnel port, with the server's SVID; an entry goes
    // with its stream once HttpClient dropped it.
    private readonly ConditionalWeakTable<SslStream, X509Certificate2> _serverConnections = [];
    private long _connectionsOpened;
    private long _generationsStarted;
    private int _disposed;

    /// <summary>
    /// Creates a pool presenting the SVIDs of <paramref name="source"/>; handshakes are counted in
    /// <paramref name="counters"/>. <paramref name="revokedIssuer"/> names the revoked node that issued
    /// a server's SVID (null when none did): such servers are refused and their connections closed.
    /// </summary>
    public TunnelClientPool(X509Source source, MeshCounters? counters = null, Func<X509Certificate2, string?>? revokedIssuer = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _revokedIssuer = revokedIssuer;
        _time = source.TimeProvider;
        Counters = counters ?? new MeshCounters();
    }

    /// <summary>The counters client handshakes go to.</summary>
    public MeshCounters Counters { get; }

    /// <summary>TCP connections (hence TLS handshakes) opened so far, over all destinations.</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>Pool generations started so far (one per destination and SVID of ours that carried a flow).</summary>
    public long GenerationsStarted => Interlocked.Read(ref _generationsStarted);

    /// <summary>Generations not yet disposed: the current ones plus retired ones that still carry flows.</summary>
    public int LiveGenerations => _alive.Count;

    /// <summary>
    /// Opens a flow to <paramref name="peer"/>'s mesh address, port <paramref name="port"/>.
    /// Throws <see cref="TunnelRefusedException"/> when the peer refuses (403: not authorized) and
    /// <see cref="HttpRequestException"/> when the connection or its mTLS handshake fails.
    /// </summary>
    public async Task<TunnelStream> OpenAsync(MeshPeer peer, int port, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Destination destination = _destinations.GetOrAdd((peer.TunnelEndpoint, peer.SpiffeId, peer.ServerName), static (key, pool) => new Destination(pool, key.Endpoint, key.Id, key.ServerName), this);
        Generation generation = destination.Acquire(_source.Current.DefaultSvid.Certificate);
        // A peer behind another node's tunnel port gets TLS from the connect callback: HTTP/2 goes on top as plain.
        string scheme = peer.ServerName is null ? "https" : "http";
        var request = new HttpRequestMessage(HttpMethod.Connect, new Uri($"{scheme}://{peer.TunnelEndpoint}/"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Protocol = TunnelProtocol.Name;
        // :authority names the destination, not the tunnel server: one connection carries flows
        // to every port of the workload behind it.
        request.Headers.Host = new IPEndPoint(peer.MeshAddress, port).ToString();
        HttpResponseMessage response;
        try
        {
            response = await generation.Client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            if (e is HttpRequestException { InnerException: AuthenticationException })
            {
                Counters.ClientHandshakes.Fail();
            }

            request.Dispose();
            generation.Release();
            throw;
        }

        try
        {
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new TunnelRefusedException(response.StatusCode);
            }

            // For an extended CONNECT HttpClient hands back one read-write stream: reads are the
            // response DATA frames, writes go out as request DATA frames on the same HTTP/2 stream.
            Stream duplex = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new TunnelStream(response, new GenerationFlowStream(duplex, generation));
        }
        catch
        {
            response.Dispose();
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

        var revoked = new List<SslStream>();
        lock (_serverConnections)
        {
            foreach ((SslStream tls, X509Certificate2 server) in _serverConnections)
            {
                if (_revokedIssuer(server) is not null)
                {
                    revoked.Add(tls);
                }
            }

            foreach (SslStream tls in revoked)
            {
                _serverConnections.Remove(tls);
            }
        }

        foreach (SslStream tls in revoked)
        {
            // Closing the stream closes the socket: HTTP/2 fails every stream on the connection, and
            // each flow's splice resets its guest connection.
            tls.Dispose();
        }

        return revoked.Count;
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
        var generation = new Generation(this, CreateClient(endpoint, expected, serverName), svid);
        _alive.TryAdd(generation, 0);
        if (Volatile.Read(ref _disposed) != 0)
        {
            generation.Dispose();
        }

        return generation;
    }

    private HttpMessageInvoker CreateClient(IPEndPoint endpoint, SpiffeId expected, string? serverName)
    {
        SslClientAuthenticationOptions ssl = SpiffeTls.CreateClientOptions(_source, id => id == expected);
        ssl.ApplicationProtocols = [SslApplicationProtocol.Http2];
        if (_revokedIssuer is not null && ssl.RemoteCertificateValidationCallback is { } validate)
        {
            // After the SPIFFE checks (which keep the intermediates the issuer check reads).
            ssl.RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
                validate(sender, certificate, chain, errors) && (certificate is not X509Certificate2 server || _revokedIssuer(server) is null);
        }

        if (serverName is not null)
        {
            // Another node's tunnel port routes by this name; the peer is still checked by its SPIFFE
            // ID. The handler would take the server name from the Host header (the mesh destination),
            // so for these the connect callback runs the TLS handshake itself and HTTP/2 runs on top.
            ssl.TargetHost = serverName;
        }

        var handler = new SocketsHttpHandler
        {
            // Many flows, one connection: HTTP/2 multiplexing is the point of the tunnel.
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            InitialHttp2StreamWindowSize = 8 << 20, // as the server's: one stream may carry a bulk flow
            // No PooledConnectionLifetime: the generation (one SVID) bounds which flows a connection takes.
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            SslOptions = ssl,
            UseProxy = false,
            ConnectCallback = async (context, ct) =>
            {
                Interlocked.Increment(ref _connectionsOpened);
                var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                    // The TLS handshake starts when this returns; it ends when the plaintext filter runs.
                    context.InitialRequestMessage.Options.Set(ConnectedAt, _time.GetTimestamp());
                    var network = new NetworkStream(socket, ownsSocket: true);
                    if (serverName is null)
                    {
                        return network;
                    }

                    var tls = new SslStream(network, leaveInnerStreamOpen: false);
                    try
                    {
                        await tls.AuthenticateAsClientAsync(ssl, ct).ConfigureAwait(false);
                    }
                    catch (AuthenticationException e)
                    {
                        await tls.DisposeAsync().ConfigureAwait(false);
                        throw new HttpRequestException(HttpRequestError.SecureConnectionError, e.Message, e);
                    }
                    catch
                    {
                        await tls.DisposeAsync().ConfigureAwait(false);
                        throw;
                    }

                    if (tls.RemoteCertificate is X509Certificate2 server)
                    {
                        lock (_serverConnections)
                        {
                            _serverConnections.AddOrUpdate(tls, server);
                        }

                        // A revocation installed during the handshake: CloseRevoked may have run before the add.
                        if (_revokedIssuer?.Invoke(server) is { } node)
                        {
                            await tls.DisposeAsync().ConfigureAwait(false);
                            throw new HttpRequestException(HttpRequestError.SecureConnectionError, $"the server's SVID was issued by node {node}, which was removed from the mesh");
                        }
                    }

                    return tls;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            PlaintextStreamFilter = (context, _) =>
            {
                if (context.InitialRequestMessage.Options.TryGetValue(ConnectedAt, out long start))
                {
                    Counters.ClientHandshakes.Observe(_time.GetElapsedTime(start));
                }

                return ValueTask.FromResult(context.PlaintextStream);
            },
        };
        return new HttpMessageInvoker(handler, disposeHandler: true);
    }

    /// <summary>One destination sidecar: its current generation.</summary>
    private sealed class Destination(TunnelClientPool pool, IPEndPoint endpoint, SpiffeId expected, string? serverName)
    {
        private readonly Lock _gate = new();
        private Generation? _current;

        /// <summary>The generation for our SVID <paramref name="svid"/>, with one more flow counted on it.</summary>
        public Generation Acquire(X509Certificate2 svid)
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
            }

            retired?.Retire();
            return current;
        }
    }

    /// <summary>
    /// An HTTP client whose connections were handshaken while one SVID of ours was current, and the
    /// number of flows on it. Disposed once retired and without flows (or with the pool).
    /// </summary>
    private sealed class Generation(TunnelClientPool pool, HttpMessageInvoker client, X509Certificate2 svid) : IDisposable
    {
        private readonly Lock _gate = new();
        private int _flows;
        private bool _retired;
        private bool _disposed;

        public HttpMessageInvoker Client => client;

        // Same object in the common case; otherwise the same issuer and serial number (a bundle-only
        // update of the Workload API stream resends the same SVID as new objects).
        public bool IsFor(X509Certificate2 certificate) => ReferenceEquals(certificate, svid) || certificate.Equals(svid);

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
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
            }

            pool._alive.TryRemove(this, out _);
            client.Dispose();
        }
    }

    /// <summary>A flow's duplex stream that releases its generation when disposed (once).</summary>
    private sealed class GenerationFlowStream(Stream inner, Generation generation) : Stream
    {
        private int _released;

        public override bool CanRead => inner.CanRead;

        public override bool CanWrite => inner.CanWrite;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                if (Interlocked.Exchange(ref _released, 1) == 0)
                {
                    generation.Release();
                }
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                generation.Release();
            }

            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
