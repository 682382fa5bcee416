namespace Beemesh.Agent.Client;

/// <summary>Every registered workload at one version (the answer of the workload watch).</summary>
public sealed class WorkloadSet
{
    /// <summary>Random per agent start: a watcher that sees it change knows the agent restarted.</summary>
    public string? Epoch { get; set; }

    /// <summary>Bumped by every registration and departure (within one epoch).</summary>
    public long Version { get; set; }

    /// <summary>The workloads, ordered by namespace, name and id.</summary>
    public List<WorkloadRecord> Workloads { get; set; } = [];

    /// <summary>
    /// Names of the nodes removed from the mesh (<c>beemesh node remove</c>), sorted. A sidecar cuts
    /// live connections whose peer presented an SVID issued by one of their node CAs and refuses new ones.
    /// </summary>
    public List<string> RevokedNodes { get; set; } = [];
}
