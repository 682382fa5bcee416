using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Beemesh.Sidecar.Mesh;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Opens tunnel streams to other sidecars: ONE pooled HTTP/2 mTLS connection per destination
/// sidecar (endpoint and expected identity), on which every flow is a CONNECT stream. The server
/// must present an SVID of exactly the directory's SPIFFE ID, or the handshake fails.
/// </summary>
public sealed class TunnelClientPool : IDisposable
{
    private readonly X509Source _source;
    private readonly ConcurrentDictionary<(IPEndPoint Endpoint, SpiffeId Id), HttpMessageInvoker> _clients = new();
    private long _connectionsOpened;

    /// <summary>Creates a pool presenting the SVIDs of <paramref name="source"/>.</summary>
    public TunnelClientPool(X509Source source)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
    }

    /// <summary>TCP connections (hence TLS handshakes) opened so far, over all destinations.</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>
    /// Opens a flow to <paramref name="peer"/>'s mesh address, port <paramref name="port"/>.
    /// Throws <see cref="TunnelRefusedException"/> when the peer refuses (403: not authorized) and
    /// <see cref="HttpRequestException"/> when the connection or its mTLS handshake fails.
    /// </summary>
    public async Task<TunnelStream> OpenAsync(MeshPeer peer, int port, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peer);
        HttpMessageInvoker client = _clients.GetOrAdd((peer.TunnelEndpoint, peer.SpiffeId), static (key, pool) => pool.CreateClient(key.Endpoint, key.Id), this);
        var request = new HttpRequestMessage(HttpMethod.Connect, new Uri($"https://{peer.TunnelEndpoint}/"))
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
            response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            request.Dispose();
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
            return new TunnelStream(response, duplex);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (HttpMessageInvoker client in _clients.Values)
        {
            client.Dispose();
        }

        _clients.Clear();
    }

    private HttpMessageInvoker CreateClient(IPEndPoint endpoint, SpiffeId expected)
    {
        SslClientAuthenticationOptions ssl = SpiffeTls.CreateClientOptions(_source, id => id == expected);
        ssl.ApplicationProtocols = [SslApplicationProtocol.Http2];
        var handler = new SocketsHttpHandler
        {
            // Many flows, one connection: HTTP/2 multiplexing is the point of the tunnel.
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            InitialHttp2StreamWindowSize = 8 << 20, // as the server's: one stream may carry a bulk flow
            // The connection carries the SVID of its handshake, and the peer cuts every flow on
            // it when that SVID expires. SVIDs rotate at half-life (30 min of a 1 h TTL), so a
            // connection older than 10 min is not reused for new flows: new flows always ride
            // a handshake made with a current SVID; flows already on it keep going.
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            SslOptions = ssl,
            UseProxy = false,
            ConnectCallback = async (_, ct) =>
            {
                Interlocked.Increment(ref _connectionsOpened);
                var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpMessageInvoker(handler, disposeHandler: true);
    }
}
