using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// Answers one request from a peer replica: the answer's kind and body, or null to close the
/// connection (a malformed request: the peer is not to be trusted with more on it).
/// </summary>
internal delegate Task<(byte Kind, byte[] Body)?> ReplicaRequestHandler(byte kind, byte[] body, CancellationToken cancellationToken);

/// <summary>
/// Request/answer connections among the replicas of one workload's store, over TCP with mutual
/// TLS: each side presents the workload's X.509-SVID and accepts only a peer with exactly the same
/// SPIFFE ID (<see cref="Authorize"/>), so no other workload can send a replica anything or read
/// what it sends. Listens on the loopback for the replicas of this node; replicas of other nodes
/// reach it through the node's tunnel port (<see cref="ServeTunnelledAsync"/>), and it reaches
/// theirs the same way (<see cref="TunnelServerName"/>, <see cref="Protocol"/>). Connections to
/// peers are pooled, one request at a time on each.
/// </summary>
/// <remarks>
/// A frame over <c>maxFrameBytes</c>, a cut-short frame or a request the handler refuses closes that
/// connection and is counted in <see cref="RefusedFrames"/>; a refused peer is counted in
/// <see cref="RefusedPeers"/> and logged. Nothing else is affected.
/// </remarks>
internal sealed class ReplicaLink : IReplicaTransport, IAsyncDisposable
{
    private readonly string _label;
    private readonly X509Source _source;
    private readonly SpiffeId _identity;
    private readonly int _maxFrameBytes;
    private readonly ILogger _logger;
    private readonly Action? _refused;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<IPEndPoint, ConcurrentBag<Pooled>> _idle = new();
    private ReplicaRequestHandler? _handler;
    private Task _acceptLoop = Task.CompletedTask;
    private long _refusedPeers;
    private long _refusedFrames;

    /// <summary>
    /// Creates a link for <paramref name="label"/> (a store, in log lines); <see cref="Start"/> begins
    /// serving. <paramref name="refusedFrame"/>, when given, is called for every refused frame too.
    /// </summary>
    public ReplicaLink(string label, X509Source source, SpiffeId identity, int maxFrameBytes, ILogger logger, Action? refusedFrame = null, IPAddress? listen = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(logger);
        _label = label;
        _source = source;
        _identity = identity;
        _maxFrameBytes = maxFrameBytes;
        _logger = logger;
        _refused = refusedFrame;
        _listener = new TcpListener(listen ?? IPAddress.Loopback, 0);
        _listener.Start();
    }

    /// <summary>
    /// The protocol (ALPN) this link's connections through nodes' tunnel ports ask for, one per
    /// store (<c>beemesh-state/KIND/STORE</c>); null when this link reaches no other node.
    /// </summary>
    public SslApplicationProtocol? Protocol { get; init; }

    /// <summary>
    /// For a peer that is another node's tunnel port: the server name to send it (the workload's
    /// own); null for a replica of this node, dialled directly. Null when no peer is on another node.
    /// </summary>
    public Func<IPEndPoint, string?>? TunnelServerName { get; init; }

    /// <summary>The protocol (ALPN) of the store <paramref name="store"/> of kind <paramref name="kind"/> between nodes.</summary>
    public static SslApplicationProtocol ProtocolFor(string kind, string store) => new($"beemesh-state/{kind}/{store}");

    /// <summary>Where this replica accepts peers' requests.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>TLS peers refused because their SPIFFE ID is not this workload's.</summary>
    public long RefusedPeers => Interlocked.Read(ref _refusedPeers);

    /// <summary>Frames refused (too large, cut short, or malformed to the handler); each closed its connection.</summary>
    public long RefusedFrames => Interlocked.Read(ref _refusedFrames);

    /// <summary>
    /// TLS options for a server that accepts only this workload (also for other transports, such as
    /// Raft's). Sessions are not resumed (SpiffeTls): a resumed session would bring a joined node's
    /// leaf without its node CA, and Raft's transport reuses one options object per member.
    /// </summary>
    public SslServerAuthenticationOptions ServerOptions() => SpiffeTls.CreateServerOptions(_source, Authorize);

    /// <summary>TLS options for a client that accepts only this workload.</summary>
    public SslClientAuthenticationOptions ClientOptions() => SpiffeTls.CreateClientOptions(_source, Authorize);

    /// <summary>Starts accepting peers; each of their requests goes to <paramref name="handler"/>.</summary>
    public void Start(ReplicaRequestHandler handler)
    {
        _handler = handler ?? throw new ArgumentNullException(nameof(handler));
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Whether <paramref name="peer"/> may talk to this replica: only the workload's own SPIFFE ID.</summary>
    public bool Authorize(SpiffeId peer)
    {
        if (peer.Equals(_identity))
        {
            return true;
        }

        Interlocked.Increment(ref _refusedPeers);
        _logger.LogWarning("{Label}: refused a TLS peer with SPIFFE ID {Peer} (only {Self} may connect)", _label, peer, _identity);
        return false;
    }

    /// <summary>True when the peer of an idle pooled connection has closed or reset it (readable with nothing to read).</summary>
    private static bool PeerClosed(Socket socket)
    {
        try
        {
            return socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>Counts a frame refused by its reader (the caller closes the connection).</summary>
    public void CountRefusedFrame()
    {
        Interlocked.Increment(ref _refusedFrames);
        _refused?.Invoke();
    }

    /// <summary>One request over a pooled connection to <paramref name="peer"/>; null when it could not be reached, hung up or answered badly.</summary>
    public Task<(byte Kind, byte[] Body)?> TrySendAsync(IPEndPoint peer, byte kind, ReadOnlyMemory<byte> body, CancellationToken cancellationToken) =>
        TrySendAsync(peer, kind, body, written: null, cancellationToken);

    /// <summary>
    /// As <see cref="TrySendAsync(IPEndPoint, byte, ReadOnlyMemory{byte}, CancellationToken)"/>;
    /// <paramref name="written"/> turns true once the request is handed to a connection that was
    /// established (and, if pooled, not closed by the peer), so a failure with it still false means
    /// the peer never received the request: it refused or did not answer the connection.
    /// </summary>
    public async Task<(byte Kind, byte[] Body)?> TrySendAsync(IPEndPoint peer, byte kind, ReadOnlyMemory<byte> body, StrongBox<bool>? written, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ConcurrentBag<Pooled> idle = _idle.GetOrAdd(peer, static _ => []);
        SslStream? stream = null;
        Socket? socket = null;
        try
        {
            // A pooled connection the peer has closed meanwhile (it stopped or restarted) is dropped
            // here rather than written to: what is written to it could not be told from a request
            // that reached the peer before it went.
            while (idle.TryTake(out Pooled pooled))
            {
                if (!PeerClosed(pooled.Socket))
                {
                    (stream, socket) = pooled;
                    break;
                }

                pooled.Stream.Dispose();
            }

            if (stream is null)
            {
                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(peer, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }

                stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
                string? serverName = TunnelServerName?.Invoke(peer);
                if (serverName is null || Protocol is not SslApplicationProtocol protocol)
                {
                    await stream.AuthenticateAsClientAsync(ClientOptions(), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    // Another node's tunnel port routes by the server name to a sidecar of this
                    // workload there, which serves the store's protocol; the peer must still be this
                    // very workload (ClientOptions), whichever sidecar took the connection.
                    SslClientAuthenticationOptions options = SpiffeTls.CreateClientOptions(_source, Authorize, serverName);
                    options.ApplicationProtocols = [protocol];
                    await stream.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
                    if (stream.NegotiatedApplicationProtocol != protocol)
                    {
                        throw new AuthenticationException($"the sidecar behind {peer} ({serverName}) does not serve {protocol}");
                    }
                }
            }

            written?.Value = true;
            await ReplicaFrame.WriteAsync(stream, kind, body, cancellationToken).ConfigureAwait(false);
            (byte Kind, byte[] Body)? response = await ReplicaFrame.ReadAsync(stream, _maxFrameBytes, cancellationToken).ConfigureAwait(false);
            if (response is null)
            {
                stream.Dispose();
                return null;
            }

            idle.Add(new Pooled(stream, socket!));
            return response;
        }
        catch (InvalidDataException e)
        {
            stream?.Dispose();
            CountRefusedFrame();
            _logger.LogWarning("{Label}: refused an answer from {Peer}: {Error}", _label, peer, e.Message);
            return null;
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException or OperationCanceledException or ObjectDisposedException)
        {
            stream?.Dispose();
            _logger.LogDebug("{Label}: request to {Peer} failed: {Error}", _label, peer, e.Message);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return null;
        }
        catch
        {
            stream?.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _acceptLoop.ConfigureAwait(false);
        foreach (ConcurrentBag<Pooled> bag in _idle.Values)
        {
            while (bag.TryTake(out Pooled pooled))
            {
                await pooled.Stream.DisposeAsync().ConfigureAwait(false);
            }
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = ServeAsync(socket);
        }
    }

    /// <summary>
    /// Serves a peer's connection that came through this node's tunnel port with
    /// <see cref="Protocol"/>, its TLS handshake done by the sidecar's tunnel server (which accepts
    /// any workload of the trust domain): a peer that is not this very workload is refused, counted in
    /// <see cref="RefusedPeers"/>, and sent nothing.
    /// </summary>
    public async Task ServeTunnelledAsync(SslStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (SpiffeTls.GetPeerId(stream) is not SpiffeId peer || !Authorize(peer))
        {
            return;
        }

        try
        {
            await ServeFramesAsync(stream, _stopping.Token).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // stopping
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        socket.NoDelay = true;
        CancellationToken stopping = _stopping.Token;
        await using var stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
        try
        {
            using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                handshake.CancelAfter(TimeSpan.FromSeconds(10));
                await stream.AuthenticateAsServerAsync(ServerOptions(), handshake.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException
            or AuthenticationException or ObjectDisposedException)
        {
            _logger.LogDebug("{Label}: replica handshake failed: {Error}", _label, e.Message);
            return;
        }

        await ServeFramesAsync(stream, stopping).ConfigureAwait(false);
    }

    private async Task ServeFramesAsync(SslStream stream, CancellationToken stopping)
    {
        try
        {
            while (await ReplicaFrame.ReadAsync(stream, _maxFrameBytes, stopping).ConfigureAwait(false) is (byte kind, byte[] body))
            {
                if (await _handler!(kind, body, stopping).ConfigureAwait(false) is not (byte answerKind, byte[] answer))
                {
                    CountRefusedFrame();
                    return;
                }

                await ReplicaFrame.WriteAsync(stream, answerKind, answer, stopping).ConfigureAwait(false);
            }
        }
        catch (InvalidDataException e)
        {
            CountRefusedFrame();
            _logger.LogWarning("{Label}: refused a frame from a peer and closed its connection: {Error}", _label, e.Message);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException
            or AuthenticationException or ObjectDisposedException)
        {
            _logger.LogDebug("{Label}: replica connection ended: {Error}", _label, e.Message);
        }
    }

    /// <summary>An idle connection and the socket under its TLS stream.</summary>
    private readonly record struct Pooled(SslStream Stream, Socket Socket);
}
