namespace Beemesh.Agent.Client;

/// <summary>Body of <c>POST /v1/workloads</c>: a workload a sidecar is about to serve.</summary>
public sealed class WorkloadRegistration
{
    /// <summary>Service account name; a DNS label.</summary>
    public string? Name { get; set; }

    /// <summary>Namespace; a DNS label. Defaults to <c>default</c>.</summary>
    public string? Namespace { get; set; }

    /// <summary>
    /// Process whose Workload API calls (and whose descendants') get this identity; 0 for the calling
    /// process itself, as the agent sees it (the way for a caller in another PID namespace, such as a
    /// sidecar container, whose own pid numbers mean nothing to the agent).
    /// </summary>
    public int Pid { get; set; }

    /// <summary>Ports the workload serves.</summary>
    public List<WorkloadPort>? Ports { get; set; }

    /// <summary>Where the workload's sidecar accepts mesh tunnels, as <c>ADDRESS:PORT</c>.</summary>
    public string? TunnelEndpoint { get; set; }
}
