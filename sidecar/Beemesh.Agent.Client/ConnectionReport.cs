namespace Beemesh.Agent.Client;

/// <summary>Body of <c>POST /v1/connections</c>: a sidecar's live connections, replacing its previous report.</summary>
public sealed class ConnectionReport
{
    /// <summary>The reporting workload's registration id.</summary>
    public string? WorkloadId { get; set; }

    /// <summary>Its live connections.</summary>
    public List<LiveConnection>? Connections { get; set; }

    /// <summary>Serial number (hex) of the X.509-SVID the sidecar holds now; null when it has none yet.</summary>
    public string? SvidSerial { get; set; }

    /// <summary>When that SVID expires; null when the sidecar has none yet.</summary>
    public DateTimeOffset? SvidNotAfter { get; set; }

    /// <summary>Version of the policy set the sidecar enforces now; null from sidecars that do not say.</summary>
    public long? PolicyVersion { get; set; }

    /// <summary>
    /// Epoch of the agent's workload list (the mesh directory) the sidecar routes by now; with
    /// <see cref="WorkloadListVersion"/>, null from sidecars that do not say.
    /// </summary>
    public string? WorkloadListEpoch { get; set; }

    /// <summary>Version of that workload list (within <see cref="WorkloadListEpoch"/>).</summary>
    public long? WorkloadListVersion { get; set; }

    /// <summary>The sidecar's cumulative mesh counters; null from sidecars that do not count.</summary>
    public MeshCounterReport? Mesh { get; set; }
}
