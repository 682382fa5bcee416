using System.Net;
using System.Net.Quic;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Mesh;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Sidecar.Tunnel.Quic;

/// <summary>
/// The caller side of the QUIC tunnel: one QUIC connection per destination node and SVID of ours,
/// opened on first use and shared by every tunnel connection to that node, each a bidirectional
/// stream that starts with a <see cref="TunnelStreamHeader"/> naming the destination workload. The
/// connection is mutually authenticated between this workload's current SVID (client certificate)
/// and the destination node's node SVID (<c>spiffe://TD/node/NAME</c>, NAME from the route; any other
/// identity, or a node removed from the mesh, fails the handshake). The stream then carries the
/// end-to-end TLS with the destination workload's sidecar, which the caller runs over it.
/// </summary>
/// <remarks>
/// A connection opened with an SVID that has rotated since takes no new streams; a new one is
/// opened with the current SVID, and the old one closes once its streams have ended and it has idled
/// for <see cref="QuicTunnelProtocol.IdleTimeout"/>. Live tunnel connections keep it busy (their
/// HTTP/2 keep-alive runs more often than that). Requires libmsquic (<see cref="IsSupported"/>).
/// </remarks>
public sealed class QuicTunnelClient : IAsyncDisposable
{
    private readonly X509Source _source;
    private readonly Func<IReadOnlySet<string>> _revokedNodes;
    private readonly Lock _gate = new();
    private readonly Dictionary<(IPEndPoint Endpoint, string Node), NodeConnection> _current = new();
    private readonly HashSet<NodeConnection> _all = [];
    private long _connectionsOpened;
    private bool _disposed;

    /// <summary>
    /// A client presenting the SVIDs of <paramref name="source"/>; <paramref name="revokedNodes"/> gives
    /// the names of the nodes removed from the mesh, refused as servers.
    /// </summary>
    public QuicTunnelClient(X509Source source, Func<IReadOnlySet<string>>? revokedNodes = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _revokedNodes = revokedNodes ?? (static () => new HashSet<string>());
    }

    /// <summary>Whether QUIC can run in this process (libmsquic was found and loads).</summary>
    public static bool IsSupported => QuicConnection.IsSupported;

    /// <summary>Environment variable that turns QUIC off for a sidecar when set to <c>off</c> (every tunnel connection then uses TCP).</summary>
    public const string SwitchVariable = "BEEMESH_TUNNEL_QUIC";

    /// <summary>Whether a sidecar started now should use QUIC: libmsquic loads and <see cref="SwitchVariable"/> is not <c>off</c>.</summary>
    public static bool ShouldUse() =>
        !string.Equals(Environment.GetEnvironmentVariable(SwitchVariable), "off", StringComparison.OrdinalIgnoreCase) && IsSupported;

    /// <summary>QUIC connections opened so far (handshakes attempted).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>QUIC connections held now (current and draining ones).</summary>
    public int LiveConnections
    {
        get
        {
            lock (_gate)
            {
                return _all.Count;
            }
        }
    }

    /// <summary>
    /// Opens a stream to the workload <paramref name="peer"/> names on its node (its
    /// <see cref="MeshPeer.ServerName"/>), with the header written, connecting to the node first when
    /// no connection for our current SVID is open. Throws <see cref="QuicTunnelConnectException"/>
    /// when the connection to the node cannot be made (the caller falls back to TCP).
    /// </summary>
    public async Task<Stream> OpenStreamAsync(MeshPeer peer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (peer.QuicEndpoint is not { } endpoint || peer.NodeName is not { } node || peer.ServerName is not { } serverName)
        {
            throw new ArgumentException("the peer is not a workload of a node that advertises QUIC", nameof(peer));
        }

        byte[] header = TunnelStreamHeader.ForServerName(serverName).ToArray();
        for (int attempt = 0; ; attempt++)
        {
            NodeConnection current = Acquire(endpoint, node);
            QuicConnection connection;
            try
            {
                connection = await current.Connection.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Forget(current);
                throw new QuicTunnelConnectException($"QUIC connection to node {node} at {endpoint} failed: {e.Message}", e);
            }

            QuicStream stream;
            try
            {
                stream = await connection.OpenOutboundStreamAsync(QuicStreamType.Bidirectional, cancellationToken).ConfigureAwait(false);
            }
            catch (QuicException e) when (attempt == 0)
            {
                // The connection ended meanwhile (idle, the node restarted): once more on a new one.
                _ = e;
                Forget(current);
                continue;
            }
            catch (QuicException e)
            {
                Forget(current);
                throw new QuicTunnelConnectException($"QUIC stream to node {node} at {endpoint} failed: {e.Message}", e);
            }

            try
            {
                await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is QuicException or System.Security.Authentication.AuthenticationException)
            {
                // TLS 1.3: the client's side of the handshake completes before the node has checked
                // our certificate; a refusal then shows here, as the connection's end.
                await stream.DisposeAsync().ConfigureAwait(false);
                Forget(current);
                throw new QuicTunnelConnectException($"QUIC connection to node {node} at {endpoint} failed: {e.Message}", e);
            }
            catch
            {
                stream.Abort(QuicAbortDirection.Both, QuicTunnelProtocol.ErrorClosed);
                await stream.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return stream;
        }
    }

    /// <summary>
    /// Closes every connection to a node in <paramref name="revokedNodes"/> (nodes removed from the
    /// mesh), which ends every stream on it; returns how many were closed.
    /// </summary>
    public int CloseRevoked(IReadOnlySet<string> revokedNodes)
    {
        ArgumentNullException.ThrowIfNull(revokedNodes);
        List<NodeConnection> closing = [];
        lock (_gate)
        {
            foreach (NodeConnection connection in _all)
            {
                if (revokedNodes.Contains(connection.Node))
                {
                    closing.Add(connection);
                }
            }

            foreach (NodeConnection connection in closing)
            {
                Remove(connection);
            }
        }

        int closed = 0;
        foreach (NodeConnection connection in closing)
        {
            if (connection.Connection.IsCompletedSuccessfully)
            {
                closed++;
            }

            _ = connection.CloseAsync(QuicTunnelProtocol.ErrorRevoked);
        }

        return closed;
    }

    private NodeConnection Acquire(IPEndPoint endpoint, string node)
    {
        X509Svid svid = _source.Current.DefaultSvid;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_current.TryGetValue((endpoint, node), out NodeConnection? current) && current.IsFor(svid) && !current.Ended)
            {
                return current;
            }

            // A rotated SVID: the old connection takes no new streams and idles out once they end.
            // Off the lock: building the TLS options and starting the handshake take a while.
            var next = new NodeConnection(endpoint, node, svid, Task.Run(() => ConnectAsync(endpoint, node, svid)));
            _current[(endpoint, node)] = next;
            _all.Add(next);
            next.Closed += () =>
            {
                lock (_gate)
                {
                    Remove(next);
                }
            };
            next.Connection.ContinueWith(
                static (t, state) => ((NodeConnection)state!).Watch(t),
                next, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return next;
        }
    }

    private void Forget(NodeConnection connection)
    {
        lock (_gate)
        {
            Remove(connection);
        }

        _ = connection.CloseAsync(QuicTunnelProtocol.ErrorClosed);
    }

    // Under _gate.
    private void Remove(NodeConnection connection)
    {
        _all.Remove(connection);
        if (_current.TryGetValue((connection.Endpoint, connection.Node), out NodeConnection? current) && ReferenceEquals(current, connection))
        {
            _current.Remove((connection.Endpoint, connection.Node));
        }
    }

    private async Task<QuicConnection> ConnectAsync(IPEndPoint endpoint, string node, X509Svid svid)
    {
        Interlocked.Increment(ref _connectionsOpened);
        SpiffeId expected = SpiffeId.FromParts(svid.Id.TrustDomain, "/node/" + node);
        SslClientAuthenticationOptions ssl = SpiffeTls.CreateClientOptions(_source, id => id == expected && !_revokedNodes().Contains(node), targetHost: node);
        // The SVID this connection is for (with its node CA), not whatever is current at handshake time.
        ssl.LocalCertificateSelectionCallback = null;
        ssl.ClientCertificateContext = SpiffeTls.CertificateContextFor(svid);
        ssl.ApplicationProtocols = [QuicTunnelProtocol.ApplicationProtocol];
        return await QuicConnection.ConnectAsync(
            new QuicClientConnectionOptions
            {
                RemoteEndPoint = endpoint,
                DefaultStreamErrorCode = QuicTunnelProtocol.ErrorClosed,
                DefaultCloseErrorCode = QuicTunnelProtocol.ErrorClosed,
                // The node opens no streams; one is allowed only so the connection can be watched for its end.
                MaxInboundBidirectionalStreams = 0,
                MaxInboundUnidirectionalStreams = 1,
                IdleTimeout = QuicTunnelProtocol.IdleTimeout,
                ClientAuthenticationOptions = ssl,
            }).ConfigureAwait(false);
    }

    /// <summary>Closes every connection (every stream on them ends).</summary>
    public async ValueTask DisposeAsync()
    {
        List<NodeConnection> all;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            all = [.. _all];
            _all.Clear();
            _current.Clear();
        }

        foreach (NodeConnection connection in all)
        {
            await connection.CloseAsync(QuicTunnelProtocol.ErrorClosed).ConfigureAwait(false);
        }
    }

    /// <summary>One QUIC connection to a node, made with one SVID of ours.</summary>
    private sealed class NodeConnection(IPEndPoint endpoint, string node, X509Svid svid, Task<QuicConnection> connection)
    {
        private int _ended;

        public IPEndPoint Endpoint => endpoint;

        public string Node => node;

        public Task<QuicConnection> Connection => connection;

        /// <summary>Whether the connection ended (closed by either side, or idled out) or failed.</summary>
        public bool Ended => Volatile.Read(ref _ended) != 0;

        /// <summary>Raised once, when the connection ended by itself.</summary>
        public event Action? Closed;

        // Same object in the common case; otherwise the same certificate (a bundle-only update resends the same SVID as new objects).
        public bool IsFor(X509Svid current) => ReferenceEquals(current, svid) || current.Certificate.Equals(svid.Certificate);

        /// <summary>Follows the connection once made: when it ends by itself, it is dropped and disposed.</summary>
        public void Watch(Task<QuicConnection> made)
        {
            if (!made.IsCompletedSuccessfully)
            {
                Interlocked.Exchange(ref _ended, 1);
                return;
            }

            _ = WatchAsync(made.Result);
        }

        private async Task WatchAsync(QuicConnection open)
        {
            try
            {
                // The node opens no streams: this ends when the connection does (one opened anyway is dropped).
                while (true)
                {
                    QuicStream unexpected = await open.AcceptInboundStreamAsync().ConfigureAwait(false);
                    unexpected.Abort(QuicAbortDirection.Both, QuicTunnelProtocol.ErrorRefused);
                    await unexpected.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is QuicException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
            }

            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                Closed?.Invoke();
            }

            await open.DisposeAsync().ConfigureAwait(false);
        }

        public async Task CloseAsync(long errorCode)
        {
            Interlocked.Exchange(ref _ended, 1);
            QuicConnection open;
            try
            {
                open = await connection.ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return;
            }

            try
            {
                await open.CloseAsync(errorCode).ConfigureAwait(false);
            }
            catch (Exception e) when (e is QuicException or ObjectDisposedException or OperationCanceledException)
            {
            }

            await open.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>A QUIC connection to a destination node could not be made (the flow falls back to TLS over TCP).</summary>
public sealed class QuicTunnelConnectException(string message, Exception inner) : IOException(message, inner);
