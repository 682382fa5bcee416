using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Beemesh.Sidecar.State.Replicas;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>
/// Carries a strong store's connections (Raft and forwarded requests) between nodes.
/// </summary>
/// <remarks>
/// <para>The replicas of a store on one node listen on that node's own loopback address for the
/// store (<see cref="NodeAddress"/>: a random <c>127.x.y.z</c> kept in the store directory), so a
/// member's Raft endpoint, its identity in the group, names one node across the mesh. A replica on
/// another node reaches such an endpoint through a relay: a listener bound to the very same endpoint
/// on its own node's loopback (<see cref="Ensure"/>), whose connections are carried through the
/// remote node's tunnel port (the server name of a replica of the workload there, ALPN
/// <c>beemesh-state/strong-relay/STORE</c>) to a sidecar of the workload, which splices them to that
/// endpoint on its loopback (<see cref="ServeAsync"/>). DotNext and the forward link dial member
/// endpoints as they are and need not know about nodes.</para>
/// <para>Nothing is trusted to the relay: the Raft and forward connections inside it keep their own
/// TLS, end to end between the two replicas, each accepting only the workload's SPIFFE ID. The tunnel
/// connection around it is mutual TLS with the same check both ways, and the serving side splices only
/// to an endpoint a replica of the store on its node recorded in its slot, so the relay opens no other
/// loopback port to anyone.</para>
/// </remarks>
internal sealed class StrongRelay : IAsyncDisposable
{
    private const byte Open = 1;
    private const byte Opened = 100;
    private const byte NotHere = 101;
    private const int MaxFrameBytes = 256;
    private readonly string _label;
    private readonly string _directory;
    private readonly IPAddress _nodeAddress;
    private readonly X509Source _source;
    private readonly SpiffeId _identity;
    private readonly IReplicaMesh _mesh;
    private readonly TimeSpan _connectTimeout;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<IPEndPoint, TcpListener> _relays = new();
    private readonly ConcurrentDictionary<IPAddress, string> _nodeOf = new();
    private long _carried;
    private long _spliced;
    private long _refusedPeers;
    private long _refusedRequests;

    public StrongRelay(string store, string directory, IPAddress nodeAddress, X509Source source, SpiffeId identity, IReplicaMesh mesh, TimeSpan connectTimeout, ILogger logger)
    {
        _label = $"strong store {store}";
        _directory = directory;
        _nodeAddress = nodeAddress;
        _source = source;
        _identity = identity;
        _mesh = mesh;
        _connectTimeout = connectTimeout;
        _logger = logger;
        Protocol = ReplicaLink.ProtocolFor("strong-relay", store);
    }

    /// <summary>The protocol (ALPN) relayed connections ask the remote sidecar for.</summary>
    public SslApplicationProtocol Protocol { get; }

    /// <summary>How the other nodes are found and reached.</summary>
    public IReplicaMesh Mesh => _mesh;

    /// <summary>Connections from this node carried to another one.</summary>
    public long Carried => Interlocked.Read(ref _carried);

    /// <summary>Connections from another node spliced to a replica of this one.</summary>
    public long Spliced => Interlocked.Read(ref _spliced);

    /// <summary>Tunnel peers refused because their SPIFFE ID is not the workload's.</summary>
    public long RefusedPeers => Interlocked.Read(ref _refusedPeers);

    /// <summary>Relay requests refused: malformed, or naming an endpoint no replica of this node recorded.</summary>
    public long RefusedRequests => Interlocked.Read(ref _refusedRequests);

    /// <summary>Whether <paramref name="address"/> is a node's loopback address for a store (in 127/8, not 127.0.0.1).</summary>
    public static bool IsNodeLoopback(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork && IPAddress.IsLoopback(address) && !address.Equals(IPAddress.Loopback);

    /// <summary>
    /// This node's loopback address for the store in <paramref name="storeDirectory"/>: read from its
    /// <c>node-address</c> file, or drawn at random in 127.1.1.1-127.254.254.254 and written there
    /// (called under the store's join lock, so the replicas of a node agree). A store whose replicas
    /// recorded endpoints on 127.0.0.1 (made before groups spanned nodes) keeps 127.0.0.1, so its
    /// replicas keep their places and logs.
    /// </summary>
    public static IPAddress NodeAddress(string storeDirectory)
    {
        if (!File.Exists(Path.Combine(storeDirectory, "node-address"))
            && ReplicaSlot.AllEndPoints(storeDirectory).Any(static e => e.Address.Equals(IPAddress.Loopback)))
        {
            return IPAddress.Loopback;
        }

        string file = Path.Combine(storeDirectory, "node-address");
        try
        {
            if (IPAddress.TryParse(File.ReadAllText(file).Trim(), out IPAddress? known) && IsNodeLoopback(known))
            {
                return known;
            }
        }
        catch (FileNotFoundException)
        {
        }

        var drawn = new IPAddress([127, (byte)RandomNumberGenerator.GetInt32(1, 255), (byte)RandomNumberGenerator.GetInt32(1, 255), (byte)RandomNumberGenerator.GetInt32(1, 255)]);
        File.WriteAllText(file + ".tmp", drawn + "\n");
        File.Move(file + ".tmp", file, overwrite: true);
        return drawn;
    }

    /// <summary>
    /// Makes <paramref name="target"/> reachable from this node when it is another node's endpoint:
    /// binds a relay to it here (once; when another sidecar of this node holds it already, theirs
    /// serves, and this one tries again on the next call).
    /// </summary>
    public void Ensure(IPEndPoint target)
    {
        if (!IsNodeLoopback(target.Address) || target.Address.Equals(_nodeAddress) || _stopping.IsCancellationRequested || _relays.ContainsKey(target))
        {
            return;
        }

        lock (_relays)
        {
            if (_relays.ContainsKey(target) || _stopping.IsCancellationRequested)
            {
                return;
            }

            var listener = new TcpListener(target);
            try
            {
                listener.Start();
            }
            catch (SocketException e)
            {
                _logger.LogDebug("{Label}: no relay to {Target} from this sidecar: {Error}", _label, target, e.Message);
                return;
            }

            _relays[target] = listener;
            _ = AcceptAsync(listener, target);
            _logger.LogInformation("{Label}: relays {Target} (a replica of another node) through the tunnel port", _label, target);
        }
    }

    /// <summary>
    /// Serves a relay request that came through this node's tunnel port: splices the connection to
    /// the endpoint it names when a replica of the store on this node recorded it, else refuses it.
    /// </summary>
    public async Task ServeAsync(SslStream stream)
    {
        if (SpiffeTls.GetPeerId(stream) is not SpiffeId peer || !Authorize(peer))
        {
            return;
        }

        CancellationToken stopping = _stopping.Token;
        IPEndPoint? target;
        try
        {
            using var first = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            first.CancelAfter(TimeSpan.FromSeconds(10));
            (byte Kind, byte[] Body)? request = await ReplicaFrame.ReadAsync(stream, MaxFrameBytes, first.Token).ConfigureAwait(false);
            if (request is not (Open, byte[] body) || !IPEndPoint.TryParse(Encoding.UTF8.GetString(body), out target))
            {
                Interlocked.Increment(ref _refusedRequests);
                _logger.LogWarning("{Label}: refused a malformed relay request", _label);
                return;
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or OperationCanceledException or ObjectDisposedException or AuthenticationException)
        {
            Interlocked.Increment(ref _refusedRequests);
            _logger.LogDebug("{Label}: relay request not read: {Error}", _label, e.Message);
            return;
        }

        if (!target.Address.Equals(_nodeAddress) || !ReplicaSlot.AllEndPoints(_directory).Contains(target))
        {
            // Asked of the wrong node (the caller tries the next), or an endpoint that is not a replica's.
            await TryAnswerAsync(stream, NotHere, stopping).ConfigureAwait(false);
            return;
        }

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            connect.CancelAfter(_connectTimeout);
            await socket.ConnectAsync(target, connect.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            socket.Dispose();
            await TryAnswerAsync(stream, NotHere, stopping).ConfigureAwait(false);
            return;
        }

        await using var local = new NetworkStream(socket, ownsSocket: true);
        if (!await TryAnswerAsync(stream, Opened, stopping).ConfigureAwait(false))
        {
            return;
        }

        Interlocked.Increment(ref _spliced);
        await SpliceAsync(stream, local, stopping).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        lock (_relays)
        {
            foreach (TcpListener listener in _relays.Values)
            {
                listener.Stop();
            }

            _relays.Clear();
        }
    }

    private bool Authorize(SpiffeId peer)
    {
        if (peer.Equals(_identity))
        {
            return true;
        }

        Interlocked.Increment(ref _refusedPeers);
        _logger.LogWarning("{Label}: refused a relay peer with SPIFFE ID {Peer} (only {Self} may connect)", _label, peer, _identity);
        return false;
    }

    private async Task AcceptAsync(TcpListener listener, IPEndPoint target)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = CarryAsync(socket, target);
        }
    }

    /// <summary>Carries one connection made to a relay to the node whose replica has <paramref name="target"/>.</summary>
    private async Task CarryAsync(Socket socket, IPEndPoint target)
    {
        socket.NoDelay = true;
        await using var local = new NetworkStream(socket, ownsSocket: true);
        CancellationToken stopping = _stopping.Token;
        IReadOnlyList<ReplicaNode> nodes = _mesh.RemoteNodes();
        // The node that answered for this address last time first, then the others.
        string? known = _nodeOf.GetValueOrDefault(target.Address);
        foreach (ReplicaNode node in nodes.OrderBy(n => n.Node == known ? 0 : 1))
        {
            SslStream? tunnel = await TryOpenAsync(node, target, stopping).ConfigureAwait(false);
            if (tunnel is not null)
            {
                _nodeOf[target.Address] = node.Node;
                Interlocked.Increment(ref _carried);
                await using (tunnel.ConfigureAwait(false))
                {
                    await SpliceAsync(local, tunnel, stopping).ConfigureAwait(false);
                }

                return;
            }
        }

        _logger.LogDebug("{Label}: no node of the mesh took a relay to {Target} ({Nodes} asked)", _label, target, nodes.Count);
    }

    private async Task<SslStream?> TryOpenAsync(ReplicaNode node, IPEndPoint target, CancellationToken stopping)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? stream = null;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            deadline.CancelAfter(TimeSpan.FromSeconds(5));
            await socket.ConnectAsync(node.TunnelEndPoint, deadline.Token).ConfigureAwait(false);
            stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
            SslClientAuthenticationOptions options = SpiffeTls.CreateClientOptions(_source, Authorize, node.ServerName);
            options.ApplicationProtocols = [Protocol];
            await stream.AuthenticateAsClientAsync(options, deadline.Token).ConfigureAwait(false);
            if (stream.NegotiatedApplicationProtocol != Protocol)
            {
                throw new AuthenticationException($"the sidecar behind {node.TunnelEndPoint} ({node.ServerName}) does not serve {Protocol}");
            }

            await ReplicaFrame.WriteAsync(stream, Open, Encoding.UTF8.GetBytes(target.ToString()), deadline.Token).ConfigureAwait(false);
            if (await ReplicaFrame.ReadAsync(stream, MaxFrameBytes, deadline.Token).ConfigureAwait(false) is (Opened, _))
            {
                return stream;
            }

            await stream.DisposeAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException or InvalidDataException or OperationCanceledException or ObjectDisposedException)
        {
            _logger.LogDebug("{Label}: relay to {Target} through node {Node} failed: {Error}", _label, target, node.Node, e.Message);
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }

            return null;
        }
    }

    private static async Task<bool> TryAnswerAsync(Stream stream, byte kind, CancellationToken token)
    {
        try
        {
            await ReplicaFrame.WriteAsync(stream, kind, ReadOnlyMemory<byte>.Empty, token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Copies both ways until either side ends; then both are closed (by the callers).</summary>
    private static async Task SpliceAsync(Stream a, Stream b, CancellationToken stopping)
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        Task there = CopyAsync(a, b, done.Token);
        Task back = CopyAsync(b, a, done.Token);
        await Task.WhenAny(there, back).ConfigureAwait(false);
        await done.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(there, back).ConfigureAwait(false);
    }

    private static async Task CopyAsync(Stream from, Stream to, CancellationToken token)
    {
        try
        {
            await from.CopyToAsync(to, 64 * 1024, token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException or AuthenticationException)
        {
            // one side went: the splice ends
        }
    }
}
