namespace Beemesh.Agent.Client;

/// <summary>
/// A sidecar's cumulative mesh counters since it started (sent with every connection report; the
/// agent keeps the latest per workload and sums them for <c>/metrics</c>).
/// </summary>
public sealed class MeshCounterReport
{
    /// <summary>Inbound tunnelled connections accepted.</summary>
    public long ConnectionsOpened { get; set; }

    /// <summary>Inbound tunnelled connections live now.</summary>
    public int ConnectionsActive { get; set; }

    /// <summary>Bytes carried from callers into the workload.</summary>
    public long BytesToWorkload { get; set; }

    /// <summary>Bytes carried from the workload back to callers.</summary>
    public long BytesFromWorkload { get; set; }

    /// <summary>Inbound (server-side) TLS handshakes of the tunnel.</summary>
    public HandshakeReport ServerHandshakes { get; set; } = new();

    /// <summary>Outbound (client-side) TLS handshakes of pooled tunnel connections.</summary>
    public HandshakeReport ClientHandshakes { get; set; } = new();

    /// <summary>Allow decisions by trigger (<c>connect</c>, <c>policy-changed</c>, <c>bundle-changed</c>, <c>svid-expired</c>).</summary>
    public Dictionary<string, long> Allowed { get; set; } = [];

    /// <summary>Deny decisions by trigger.</summary>
    public Dictionary<string, long> Denied { get; set; } = [];

    /// <summary>Live connections revoked, by trigger.</summary>
    public Dictionary<string, long> Revocations { get; set; } = [];

    /// <summary>Live connections kept past their handshake SVID's expiry (the caller was still a mesh workload).</summary>
    public long KeptAtSvidExpiry { get; set; }

    /// <summary>Rotations of the sidecar's own SVID.</summary>
    public long SvidRotations { get; set; }

    /// <summary>Outbound tunnel connections opened, by transport (<c>tcp</c>, <c>quic</c>).</summary>
    public Dictionary<string, long> TunnelConnections { get; set; } = [];

    /// <summary>Outbound tunnel connections that went over TCP because QUIC to their node failed.</summary>
    public long QuicFallbacks { get; set; }

    /// <summary>
    /// Replication of the workload's eventual state stores: <c>pushed</c>, <c>received</c>,
    /// <c>merged</c> (entries), <c>digest_rounds</c>, <c>refused_frames</c>, <c>failed_exchanges</c>.
    /// </summary>
    public Dictionary<string, long> EventualState { get; set; } = [];

    /// <summary>Outbound tunnel connections opened because the others to the same destination were at the peer's stream limit.</summary>
    public long StreamLimitConnections { get; set; }

    /// <summary>Tunnel connections (either side) closed after carrying no flow for their idle period.</summary>
    public long IdleClosed { get; set; }

    /// <summary>
    /// Tunnel connections (either side) closed because the peer stopped answering keep-alive PINGs
    /// (<c>keepalive_timeout</c>) or sent PINGs past its budget (<c>ping_flood</c>), by reason.
    /// </summary>
    public Dictionary<string, long> TunnelConnectionsLost { get; set; } = [];

    /// <summary>Flows reset because their tunnel connection was closed so, by the same reasons.</summary>
    public Dictionary<string, long> TunnelFlowsLost { get; set; } = [];
}
