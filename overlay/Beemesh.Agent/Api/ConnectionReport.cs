namespace Beemesh.Agent.Api;

/// <summary>Body of <c>POST /v1/connections</c>: a sidecar's live connections, replacing its previous report.</summary>
public sealed class ConnectionReport
{
    /// <summary>The reporting workload's registration id.</summary>
    public string? WorkloadId { get; set; }

    /// <summary>Its live connections.</summary>
    public List<LiveConnection>? Connections { get; set; }

    /// <summary>The sidecar's cumulative mesh counters; null from sidecars that do not count.</summary>
    public MeshCounterReport? Mesh { get; set; }
}
