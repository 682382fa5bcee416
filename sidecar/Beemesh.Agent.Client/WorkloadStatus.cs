namespace Beemesh.Agent.Client;

/// <summary>One workload as <c>GET /v1/status</c> shows it.</summary>
public sealed class WorkloadStatus
{
    /// <summary>The registration.</summary>
    public WorkloadRecord Workload { get; set; } = new();

    /// <summary>Whether the attested process still exists.</summary>
    public bool PidAlive { get; set; }

    /// <summary>The last connection report of its sidecar (empty when none).</summary>
    public List<LiveConnection> Connections { get; set; } = [];

    /// <summary>Serial number (hex) of the SVID its sidecar last reported holding; null when not reported.</summary>
    public string? SvidSerial { get; set; }

    /// <summary>When that SVID expires; null when not reported.</summary>
    public DateTimeOffset? SvidNotAfter { get; set; }

    /// <summary>Version of the policy set its sidecar last reported enforcing; null when not reported.</summary>
    public long? PolicyVersion { get; set; }

    /// <summary>
    /// Version of this agent's workload list its sidecar last reported routing by (which replicas it
    /// balances over); null when not reported, or when the sidecar's list is of an earlier agent start.
    /// </summary>
    public long? WorkloadListVersion { get; set; }

    /// <summary>When the sidecar last reported connections; null when never.</summary>
    public DateTimeOffset? ConnectionsReportedAt { get; set; }
}
