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
}
