using System.Collections.Concurrent;
using System.Net;
using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tunnel.Quic;

/// <summary>What a tunnel connection to another sidecar runs over.</summary>
public enum TunnelTransport
{
    /// <summary>TLS over TCP: straight to a local sidecar, or to another node's tunnel port (routed by SNI).</summary>
    Tcp,

    /// <summary>A stream of a QUIC connection to another node's QUIC tunnel endpoint (see <see cref="Beemesh.Agent.Client.QuicTunnelProtocol"/>).</summary>
    Quic,
}

/// <summary>
/// Chooses the transport of each new tunnel connection, per destination node: QUIC when this
/// process can run it (libmsquic present), the destination is a workload of another node and that
/// node advertises QUIC (capability <c>h3</c>, <see cref="MeshPeer.QuicEndpoint"/>), and no QUIC
/// connection to that node failed within <see cref="TcpOnlyPeriod"/>; otherwise TLS over TCP. A
/// failed QUIC connect (<see cref="QuicFailed"/>) sends that flow over TCP and keeps the node on
/// TCP for <see cref="TcpOnlyPeriod"/>, after which QUIC is tried again. Thread-safe; the clock is
/// injected. Holds one entry per node that failed, dropped once its period is over.
/// </summary>
public sealed class TunnelTransportChooser
{
    /// <summary>How long a node whose QUIC connect failed is reached over TCP only (default 5 min).</summary>
    public static readonly TimeSpan DefaultTcpOnlyPeriod = TimeSpan.FromMinutes(5);

    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<IPEndPoint, DateTimeOffset> _tcpOnlyUntil = new();

    /// <summary>
    /// A chooser for a process where QUIC runs when <paramref name="quicSupported"/>, keeping failed
    /// nodes on TCP for <paramref name="tcpOnlyPeriod"/> (default <see cref="DefaultTcpOnlyPeriod"/>).
    /// </summary>
    public TunnelTransportChooser(bool quicSupported, TimeProvider? time = null, TimeSpan? tcpOnlyPeriod = null)
    {
        TimeSpan period = tcpOnlyPeriod ?? DefaultTcpOnlyPeriod;
        ArgumentOutOfRangeException.ThrowIfLessThan(period, TimeSpan.Zero);
        QuicSupported = quicSupported;
        _time = time ?? TimeProvider.System;
        TcpOnlyPeriod = period;
    }

    /// <summary>Whether QUIC can run in this process.</summary>
    public bool QuicSupported { get; }

    /// <summary>How long a node stays on TCP after a failed QUIC connect.</summary>
    public TimeSpan TcpOnlyPeriod { get; }

    /// <summary>The transport for a new tunnel connection to <paramref name="peer"/>.</summary>
    public TunnelTransport Choose(MeshPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (!QuicSupported || peer.ServerName is null || peer.NodeName is null || peer.QuicEndpoint is not { } node)
        {
            return TunnelTransport.Tcp;
        }

        if (_tcpOnlyUntil.TryGetValue(node, out DateTimeOffset until))
        {
            if (_time.GetUtcNow() < until)
            {
                return TunnelTransport.Tcp;
            }

            // Over: QUIC is tried again (a concurrent new failure is kept).
            _tcpOnlyUntil.TryRemove(new KeyValuePair<IPEndPoint, DateTimeOffset>(node, until));
        }

        return TunnelTransport.Quic;
    }

    /// <summary>
    /// A QUIC connect to <paramref name="peer"/>'s node failed: that node is reached over TCP until
    /// the returned time.
    /// </summary>
    public DateTimeOffset QuicFailed(MeshPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        DateTimeOffset now = _time.GetUtcNow();
        DateTimeOffset until = now + TcpOnlyPeriod;
        if (peer.QuicEndpoint is { } node)
        {
            _tcpOnlyUntil[node] = until;
        }

        // Entries whose period is over go, so the map holds only nodes failing now.
        foreach ((IPEndPoint endpoint, DateTimeOffset end) in _tcpOnlyUntil)
        {
            if (end <= now)
            {
                _tcpOnlyUntil.TryRemove(new KeyValuePair<IPEndPoint, DateTimeOffset>(endpoint, end));
            }
        }

        return until;
    }

    /// <summary>Nodes (by QUIC endpoint) reached over TCP only now.</summary>
    public int TcpOnlyNodes
    {
        get
        {
            DateTimeOffset now = _time.GetUtcNow();
            return _tcpOnlyUntil.Count(e => e.Value > now);
        }
    }
}
