using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Beemesh.Sidecar.Telemetry;

/// <summary>
/// The sidecar's cumulative mesh counters: inbound connections, bytes, TLS handshakes on both
/// sides, authorization decisions and revocations by trigger, and SVID lifecycle events. Every
/// member is thread-safe and allocation-free once a trigger name has been seen; the sidecar ships
/// their current values to the node agent with every connection report, and the agent sums
/// them. Counters only grow for the life of the sidecar.
/// </summary>
public sealed class MeshCounters
{
    private readonly ConcurrentDictionary<string, StrongBox<long>> _allowed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox<long>> _denied = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox<long>> _revoked = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox<long>> _tunnelsLost = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox<long>> _flowsLost = new(StringComparer.Ordinal);
    private long _connectionsOpened;
    private long _bytesToWorkload;
    private long _bytesFromWorkload;
    private long _keptAtSvidExpiry;
    private long _svidRotations;
    private long _tcpConnections;
    private long _quicConnections;
    private long _quicFallbacks;
    private long _streamLimitConnections;
    private long _idleClosed;

    /// <summary>Replication counters of the workload's eventual state stores.</summary>
    public EventualStateCounters EventualState { get; } = new();

    /// <summary>Server-side (inbound) TLS handshakes of the tunnel.</summary>
    public HandshakeHistogram ServerHandshakes { get; } = new();

    /// <summary>Client-side (outbound) TLS handshakes of pooled tunnel connections.</summary>
    public HandshakeHistogram ClientHandshakes { get; } = new();

    /// <summary>Inbound tunnelled connections accepted (authorized and tracked) so far.</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>Bytes carried from callers into the workload.</summary>
    public long BytesToWorkload => Interlocked.Read(ref _bytesToWorkload);

    /// <summary>Bytes carried from the workload back to callers.</summary>
    public long BytesFromWorkload => Interlocked.Read(ref _bytesFromWorkload);

    /// <summary>Live connections that outlived the SVID of their handshake because the caller was still a mesh workload.</summary>
    public long KeptAtSvidExpiry => Interlocked.Read(ref _keptAtSvidExpiry);

    /// <summary>Times this sidecar received a new SVID of its own (rotation).</summary>
    public long SvidRotations => Interlocked.Read(ref _svidRotations);

    /// <summary>
    /// Outbound tunnel connections opened so far, by transport: <c>tcp</c> (TLS over TCP) and
    /// <c>quic</c> (a stream of a QUIC connection to the destination node).
    /// </summary>
    public IReadOnlyDictionary<string, long> TunnelConnections => new Dictionary<string, long>(StringComparer.Ordinal)
    {
        ["tcp"] = Interlocked.Read(ref _tcpConnections),
        ["quic"] = Interlocked.Read(ref _quicConnections),
    };

    /// <summary>Outbound tunnel connections that went over TCP because the QUIC connection to their node failed.</summary>
    public long QuicFallbacks => Interlocked.Read(ref _quicFallbacks);

    /// <summary>Counts an outbound tunnel connection opened over <paramref name="transport"/>.</summary>
    public void CountTunnelConnection(Beemesh.Sidecar.Tunnel.Quic.TunnelTransport transport) =>
        Interlocked.Increment(ref transport == Beemesh.Sidecar.Tunnel.Quic.TunnelTransport.Quic ? ref _quicConnections : ref _tcpConnections);

    /// <summary>
    /// Outbound tunnel connections opened because every connection to their destination was at the
    /// peer's SETTINGS_MAX_CONCURRENT_STREAMS (a second, third... connection to one destination).
    /// </summary>
    public long StreamLimitConnections => Interlocked.Read(ref _streamLimitConnections);

    /// <summary>Tunnel connections closed (GOAWAY) after carrying no flow for their idle period, both sides.</summary>
    public long IdleClosed => Interlocked.Read(ref _idleClosed);

    /// <summary>Counts a connection opened because the others to its destination were full.</summary>
    public void CountStreamLimitConnection() => Interlocked.Increment(ref _streamLimitConnections);

    /// <summary>Counts a connection closed for idleness.</summary>
    public void CountIdleClosed() => Interlocked.Increment(ref _idleClosed);

    /// <summary>Counts a fall back from QUIC to TCP.</summary>
    public void CountQuicFallback() => Interlocked.Increment(ref _quicFallbacks);

    /// <summary>Counts an accepted inbound connection.</summary>
    public void CountConnectionOpened() => Interlocked.Increment(ref _connectionsOpened);

    /// <summary>Counts <paramref name="bytes"/> carried in one direction.</summary>
    public void CountBytes(bool toWorkload, long bytes)
    {
        if (toWorkload)
        {
            Interlocked.Add(ref _bytesToWorkload, bytes);
        }
        else
        {
            Interlocked.Add(ref _bytesFromWorkload, bytes);
        }
    }

    /// <summary>Counts one authorization decision taken for <paramref name="trigger"/>.</summary>
    public void CountDecision(bool allowed, string trigger)
    {
        ArgumentNullException.ThrowIfNull(trigger);
        Increment(allowed ? _allowed : _denied, trigger);
    }

    /// <summary>Counts a live connection revoked by <paramref name="trigger"/>.</summary>
    public void CountRevocation(string trigger)
    {
        ArgumentNullException.ThrowIfNull(trigger);
        Increment(_revoked, trigger);
    }

    /// <summary>Counts a live connection kept past its handshake SVID's expiry.</summary>
    public void CountKeptAtSvidExpiry() => Interlocked.Increment(ref _keptAtSvidExpiry);

    /// <summary>Counts a rotation of this sidecar's own SVID.</summary>
    public void CountSvidRotation() => Interlocked.Increment(ref _svidRotations);

    /// <summary>
    /// Counts a tunnel connection (either side) closed because its peer stopped answering the
    /// keep-alive or flooded it with PINGs, and the <paramref name="flows"/> reset with it.
    /// </summary>
    public void CountTunnelLost(Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason reason, int flows)
    {
        string label = LostLabel(reason);
        Increment(_tunnelsLost, label);
        Interlocked.Add(ref _flowsLost.GetOrAdd(label, static _ => new StrongBox<long>()).Value, flows);
    }

    /// <summary>The metric label of <paramref name="reason"/>: <c>keepalive_timeout</c> or <c>ping_flood</c>.</summary>
    public static string LostLabel(Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason reason) => reason switch
    {
        Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason.KeepAliveTimeout => "keepalive_timeout",
        Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason.PingFlood => "ping_flood",
        _ => "other",
    };

    /// <summary>Tunnel connections closed by the keep-alive or the PING budget, by reason (<see cref="LostLabel"/>).</summary>
    public IReadOnlyDictionary<string, long> TunnelConnectionsLost => Copy(_tunnelsLost);

    /// <summary>Flows reset because their tunnel connection was closed by the keep-alive or the PING budget, by reason.</summary>
    public IReadOnlyDictionary<string, long> TunnelFlowsLost => Copy(_flowsLost);

    /// <summary>Allow decisions by trigger.</summary>
    public IReadOnlyDictionary<string, long> Allowed => Copy(_allowed);

    /// <summary>Deny decisions by trigger.</summary>
    public IReadOnlyDictionary<string, long> Denied => Copy(_denied);

    /// <summary>Revocations by trigger.</summary>
    public IReadOnlyDictionary<string, long> Revocations => Copy(_revoked);

    private static void Increment(ConcurrentDictionary<string, StrongBox<long>> counters, string key) =>
        Interlocked.Increment(ref counters.GetOrAdd(key, static _ => new StrongBox<long>()).Value);

    private static Dictionary<string, long> Copy(ConcurrentDictionary<string, StrongBox<long>> counters)
    {
        var copy = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, StrongBox<long>> pair in counters)
        {
            copy[pair.Key] = Interlocked.Read(ref pair.Value.Value);
        }

        return copy;
    }
}
