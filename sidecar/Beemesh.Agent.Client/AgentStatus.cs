namespace Beemesh.Agent.Client;

/// <summary>Answer to <c>GET /v1/status</c>.</summary>
public sealed class AgentStatus
{
    /// <summary>The agent's trust domain.</summary>
    public string TrustDomain { get; set; } = string.Empty;

    /// <summary>Path of the SPIFFE Workload API socket.</summary>
    public string WorkloadApiSocket { get; set; } = string.Empty;

    /// <summary>Path of the admin socket.</summary>
    public string AdminSocket { get; set; } = string.Empty;

    /// <summary>Lifetime of the X509-SVIDs the agent issues, in seconds (they rotate at half-life).</summary>
    public long SvidTtlSeconds { get; set; }

    /// <summary>When the trust domain's root certificate expires.</summary>
    public DateTimeOffset RootExpires { get; set; }

    /// <summary>Current policy version.</summary>
    public long PolicyVersion { get; set; }

    /// <summary>Number of stored policies.</summary>
    public int PolicyCount { get; set; }

    /// <summary>Current version of the workload list the sidecars watch.</summary>
    public long WorkloadListVersion { get; set; }

    /// <summary>Registered workloads.</summary>
    public List<WorkloadStatus> Workloads { get; set; } = [];
}
