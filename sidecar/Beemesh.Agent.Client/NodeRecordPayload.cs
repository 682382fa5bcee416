namespace Beemesh.Agent.Client;

/// <summary>Content of a node record the overlay carries (JSON).</summary>
public sealed class NodeRecordPayload
{
    /// <summary>Node name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Node port (joins, overlay links), IP:PORT.</summary>
    public string Overlay { get; set; } = string.Empty;

    /// <summary>Tunnel endpoint, IP:PORT.</summary>
    public string? Tunnel { get; set; }

    /// <summary>The block of the mesh CIDR this node claims for its workloads.</summary>
    public string? MeshBlock { get; set; }

    /// <summary>
    /// Tunnel transports this node serves: <see cref="Http2Capability"/> (TLS over TCP on
    /// <see cref="Tunnel"/>) always, <see cref="QuicCapability"/> (QUIC on <see cref="Quic"/>) only
    /// when QUIC runs on it. Records of nodes that predate the field carry none (read as h2 only).
    /// </summary>
    public List<string>? Capabilities { get; set; }

    /// <summary>The node's QUIC tunnel endpoint (UDP), IP:PORT, when it advertises <see cref="QuicCapability"/>.</summary>
    public string? Quic { get; set; }

    /// <summary>Capability: the tunnel over TLS over TCP (HTTP/2 CONNECT streams inside the end-to-end TLS).</summary>
    public const string Http2Capability = "h2";

    /// <summary>Capability: the tunnel over QUIC, one stream per tunnel connection (see <see cref="TunnelStreamHeader"/>).</summary>
    public const string QuicCapability = "h3";

    /// <summary>The QUIC endpoint when the node advertises <see cref="QuicCapability"/> and a valid endpoint with a port; else null.</summary>
    public System.Net.IPEndPoint? QuicEndpoint() =>
        Capabilities?.Contains(QuicCapability) == true && System.Net.IPEndPoint.TryParse(Quic ?? string.Empty, out System.Net.IPEndPoint? endpoint) && endpoint.Port != 0
            ? endpoint
            : null;
}
