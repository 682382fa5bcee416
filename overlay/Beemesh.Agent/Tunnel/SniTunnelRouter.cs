using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Beemesh.Agent.Client;
using Beemesh.Spiffe.Serving;

namespace Beemesh.Agent.Tunnel;

/// <summary>
/// The node's tunnel port: accepts TCP connections, reads the TLS ClientHello's server name
/// without terminating TLS (it only peeks, so the hello stays queued), and passes the connection to
/// the named local workload's sidecar: as a descriptor when the sidecar takes connections that way
/// (<see cref="HandOff"/>), which leaves this process out of the data path, else by connecting to
/// the sidecar's tunnel endpoint and splicing bytes both ways. Mutual TLS stays end to end between
/// the two sidecars. An unknown name, a
/// hello without a name, a malformed hello, or one not complete within
/// <see cref="HelloTimeout"/> closes the connection and is counted in <see cref="Counters"/>.
/// Connections from the addresses of nodes removed from the mesh (<see cref="RefusePeers"/>) are
/// refused at accept, and the relayed live ones from them are closed, before any TLS: the sidecars
/// behind the port refuse and cut SVIDs those nodes issued, whatever address they come from, which
/// is what cuts handed off connections.
/// </summary>
public sealed class SniTunnelRouter : IAsyncDisposable
{
    /// <summary>Default tunnel port of a node (the port Istio uses for HBONE).</summary>
    public const int DefaultPort = 15008;

    private readonly Func<string, IPEndPoint?> _resolve;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly AcceptLoop _loop;
    private readonly CancellationToken _stopping;
    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Splice, byte> _splices = new();
    private volatile IReadOnlySet<IPAddress> _refusedPeers = new HashSet<IPAddress>();
    private readonly ReadinessWaiter _waiter = new();

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
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            _waiter.Dispose();
            throw;
        }

        Endpoint = (IPEndPoint)listener.LocalEndPoint!;
        _loop = new AcceptLoop(listener, HandleAsync);
        _stopping = _loop.Stopping;
    }

    /// <summary>
    /// Whether <paramref name="target"/> is this tunnel port itself: the endpoint of a workload whose
    /// sidecar takes its connections only as descriptors, which is never relayed (it would loop).
    /// </summary>
    private bool IsSelf(IPEndPoint target)
    {
        if (target.Port != Endpoint.Port)
        {
            return false;
        }

        IPAddress address = Normalize(target.Address);
        IPAddress own = Normalize(Endpoint.Address);
        return address.Equals(own)
            || ((own.Equals(IPAddress.Any) || own.Equals(IPAddress.IPv6Any)) && IPAddress.IsLoopback(address));
    }

    /// <summary>How long a client has to send its whole ClientHello (default 10 s).</summary>
    public TimeSpan HelloTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a connection to the local sidecar may take (default 5 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a relayed connection may stay half-closed (one side sent its FIN, the other goes on)
    /// before both sides are reset (counted as <c>cut_half_closed</c>); default 20 s, the sidecars'
    /// keep-alive bound. TLS inside has no half-close, so the other side normally ends at once; one
    /// that does not is a caller whose process was stopped after the sidecar closed for want of its
    /// keep-alive answers (its kernel still acknowledges everything, so no TCP bound applies).
    /// </summary>
    public TimeSpan HalfClosedTimeout { get; init; } = TunnelKeepAlive.DefaultInterval + TunnelKeepAlive.DefaultTimeout;

    /// <summary>
    /// Passes a routed connection to the sidecar of the named workload (the lower-case server name
    /// and the accepted socket, its ClientHello still queued): true when the sidecar took it, and
    /// this router then only closes its own descriptor; false to relay it instead. Null relays all.
    /// </summary>
    public Func<string, Socket, bool>? HandOff { get; init; }

    /// <summary>The bound endpoint (with the actual port when 0 was asked).</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>
    /// Counters by name: <c>routed</c> (which then took one of two paths: <c>handed_off</c> to the
    /// sidecar as a descriptor, or <c>relayed</c> through this router), and refusals <c>refused_unknown_name</c>,
    /// <c>refused_no_name</c>, <c>refused_malformed</c>, <c>refused_timeout</c>, <c>refused_unreachable</c>,
    /// <c>refused_revoked_peer</c>, <c>cut_revoked_peer</c> (live connections closed by <see cref="RefusePeers"/>) and
    /// <c>cut_half_closed</c> (relayed connections reset after <see cref="HalfClosedTimeout"/> half-closed).
    /// </summary>
    public IReadOnlyDictionary<string, long> Counters => _counters;

    /// <summary>Every name <see cref="Counters"/> may hold, in a fixed order (for rendering each one, zero included).</summary>
    public static IReadOnlyList<string> CounterNames { get; } =
    [
        "routed", "handed_off", "relayed", "refused_unknown_name", "refused_no_name", "refused_malformed", "refused_timeout", "refused_unreachable",
        "refused_revoked_peer", "cut_revoked_peer", "cut_half_closed",
    ];

    /// <summary>Connections being relayed now (handed off ones are the sidecars' own).</summary>
    public int LiveConnections => _splices.Count;

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
        int cut = 0;
        foreach (Splice splice in _splices.Keys)
        {
            if (set.Contains(splice.Peer) && splice.Close())
            {
                cut++;
                Count("cut_revoked_peer");
                TunnelRouterLog.Refused(_logger, splice.Peer.ToString(), "its node was removed from the mesh");
            }
        }

        return cut;
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>Starts accepting connections.</summary>
    public void Start() => _loop.Start();

    private void Count(string name) => _counters.AddOrUpdate(name, 1, static (_, v) => v + 1);

    private void Uncount(string name) => _counters.AddOrUpdate(name, 0, static (_, v) => v - 1);

    private async Task HandleAsync(Socket client)
    {
        string peer = client.RemoteEndPoint?.ToString() ?? "?";
        IPAddress? peerAddress = (client.RemoteEndPoint as IPEndPoint)?.Address is { } remote ? Normalize(remote) : null;
        if (peerAddress is not null && _refusedPeers.Contains(peerAddress))
        {
            Refuse(peer, "refused_revoked_peer", "its node was removed from the mesh");
            client.Close(0);
            return;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(ClientHelloSni.MaxHelloBytes);
        Socket? upstream = null;
        Splice? splice = null;
        try
        {
            client.NoDelay = true;
            string? name = null;
            using (var helloTimeout = new CancellationTokenSource(HelloTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(helloTimeout.Token, _stopping))
            {
                SniReadStatus status;
                try
                {
                    (status, name) = await PeekHelloAsync(client, buffer, linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (helloTimeout.IsCancellationRequested)
                {
                    Refuse(peer, "refused_timeout", "no complete ClientHello in time");
                    return;
                }

                switch (status)
                {
                    case SniReadStatus.NeedMore:
                        Refuse(peer, "refused_malformed", "closed before a complete ClientHello");
                        return;
                    case SniReadStatus.Malformed:
                        Refuse(peer, "refused_malformed", "not a TLS ClientHello");
                        return;
                    case SniReadStatus.Missing:
                        Refuse(peer, "refused_no_name", "ClientHello without a server name");
                        return;
                }
            }

            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null!;
            IPEndPoint? target = _resolve(name!);
            if (target is null)
            {
                Refuse(peer, "refused_unknown_name", $"no local workload named {name}");
                return;
            }

            // The sidecar takes the connection itself when it can: the hello is still queued on it
            // (only peeked), and this process leaves the data path.
            if (HandOff is { } handOff)
            {
                // Counted before the connection is passed on, so whoever sees it at the sidecar also sees the count.
                Count("routed");
                Count("handed_off");
                if (handOff(name!, client))
                {
                    return;
                }

                // No channel (an older sidecar, or one not connected yet) or a full one: relay it.
                Uncount("routed");
                Uncount("handed_off");
            }

            if (IsSelf(target))
            {
                // A sidecar that cannot be dialled (a pod's) is reached only through its channel.
                Refuse(peer, "refused_unreachable", $"sidecar of {name} takes connections only by handoff and has no channel open");
                return;
            }

            upstream = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using (var connectTimeout = new CancellationTokenSource(ConnectTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(connectTimeout.Token, _stopping))
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

            // Counted before any byte is passed on, so whoever sees the hello at the sidecar also sees the count.
            Count("routed");
            Count("relayed");
            if (peerAddress is not null)
            {
                splice = new Splice(peerAddress, client, upstream);
                _splices.TryAdd(splice, 0);
                // A refusal set while this connection was being routed: RefusePeers may not have seen it.
                if (_refusedPeers.Contains(peerAddress) && splice.Close())
                {
                    Count("cut_revoked_peer");
                    return;
                }
            }

            // A relayed caller's machine that died, or its network cut, is noticed by the kernel (see
            // TunnelKeepAlive.ConfigureRelaySocket); the sidecar's end is on this host.
            TunnelKeepAlive.ConfigureRelaySocket(client);

            // The hello was only peeked: the splice passes it on with the rest. The half-close timer
            // is armed by the first direction to end, before its FIN is passed on.
            using var a = new NetworkStream(client, ownsSocket: false);
            using var b = new NetworkStream(upstream, ownsSocket: false);
            Socket clientSocket = client;
            Socket upstreamSocket = upstream;
            using var halfClosed = new HalfClosedBound(HalfClosedTimeout, _time, () =>
            {
                Count("cut_half_closed");
                clientSocket.Close(0);
                upstreamSocket.Close(0);
            });
            Task up = CopyAsync(a, upstream, halfClosed);
            Task down = CopyAsync(b, client, halfClosed);
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
            if (splice is not null)
            {
                _splices.TryRemove(splice, out _);
            }

            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            // A handed off connection lives on in the sidecar: no runtime async operation ever ran on
            // this socket, so disposing it is a plain close(2) of this process's descriptor only.
            client.Dispose();
            upstream?.Dispose();
        }
    }

    /// <summary>
    /// Reads the ClientHello's server name by peeking, so the hello stays queued on the socket for
    /// whoever serves the connection. NeedMore means the caller closed before a complete hello.
    /// </summary>
    private async Task<(SniReadStatus Status, string? Name)> PeekHelloAsync(Socket client, byte[] buffer, CancellationToken cancellationToken)
    {
        int seen = 0;
        bool raisedLowWater = false;
        while (true)
        {
            int length = ReadinessWaiter.Peek(client.SafeHandle, buffer.AsSpan(0, ClientHelloSni.MaxHelloBytes));
            if (length == 0)
            {
                return (SniReadStatus.NeedMore, null);
            }

            if (length > 0 && length == seen)
            {
                // Woken without more data (readable means more than was seen is queued): the caller
                // closed its side, or the connection failed, before completing the hello.
                return (SniReadStatus.NeedMore, null);
            }

            if (length > 0)
            {
                seen = length;
                SniReadStatus status = ClientHelloSni.TryRead(buffer.AsSpan(0, length), out string? name);
                if (status == SniReadStatus.NeedMore && length == ClientHelloSni.MaxHelloBytes)
                {
                    status = SniReadStatus.Malformed;
                }

                if (status != SniReadStatus.NeedMore)
                {
                    if (raisedLowWater)
                    {
                        // Back to the default, for whoever reads the connection next.
                        client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveLowWater, 1);
                    }

                    return (status, name);
                }
            }

            if (seen > 0)
            {
                // Readable only once more than what was seen is queued (the rest of a split hello).
                client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveLowWater, seen + 1);
                raisedLowWater = true;
            }

            await _waiter.WaitReadableAsync(client.SafeHandle, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task CopyAsync(Stream from, Socket to, HalfClosedBound halfClosed)
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int read;
            while ((read = await from.ReadAsync(chunk, _stopping).ConfigureAwait(false)) > 0)
            {
                await to.SendAsync(chunk.AsMemory(0, read), SocketFlags.None, _stopping).ConfigureAwait(false);
            }

            // Pass the end of this direction on as a FIN; the other direction keeps flowing, for
            // HalfClosedTimeout at most (armed first, so whoever sees the FIN sees it armed).
            halfClosed.DirectionEnded();

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
        await _loop.StopAsync().ConfigureAwait(false);
        _waiter.Dispose();
    }
}

/// <summary>One routed connection: the peer's address and both sockets, closed at most once by a refusal.</summary>
internal sealed class Splice(IPAddress peer, Socket client, Socket upstream)
{
    private int _closed;

    public IPAddress Peer => peer;

    /// <summary>Resets both sides; false when it was closed this way already.</summary>
    public bool Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return false;
        }

        // Close(0): an RST, so neither end waits on a half-closed connection.
        client.Close(0);
        upstream.Close(0);
        return true;
    }
}

/// <summary>Log lines of the node tunnel port.</summary>
internal static partial class TunnelRouterLog
{
    [LoggerMessage(EventId = 4300, Level = LogLevel.Information, Message = "tunnel port: connection from {Peer} closed: {Reason}")]
    public static partial void Refused(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 4301, Level = LogLevel.Information, Message = "quic tunnel: from {Peer}: refused or closed: {Reason}")]
    public static partial void QuicRefused(ILogger logger, string peer, string reason);
}
