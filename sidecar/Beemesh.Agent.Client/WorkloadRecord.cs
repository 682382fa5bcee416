namespace Beemesh.Agent.Client;

/// <summary>A registered workload: what the agent knows and what other sidecars resolve.</summary>
public sealed class WorkloadRecord
{
    /// <summary>Opaque id, used to delete the registration and report connections.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Service account name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Namespace.</summary>
    public string Namespace { get; set; } = string.Empty;

    /// <summary>The attested process.</summary>
    public int Pid { get; set; }

    /// <summary><c>spiffe://TD/ns/NAMESPACE/sa/NAME</c>.</summary>
    public string SpiffeId { get; set; } = string.Empty;

    /// <summary>The address the name resolves to inside every workload's network; stable per name and namespace.</summary>
    public string MeshAddress { get; set; } = string.Empty;

    /// <summary>Where the workload's sidecar accepts mesh tunnels.</summary>
    public string TunnelEndpoint { get; set; } = string.Empty;

    /// <summary>Ports the workload serves.</summary>
    public List<WorkloadPort> Ports { get; set; } = [];

    /// <summary>
    /// Null for a workload of this agent; for a remote route (learnt from the overlay), the name of the
    /// node it runs on, which signed the route.
    /// </summary>
    public string? Node { get; set; }

    /// <summary>
    /// For a remote route, or a workload of this agent whose sidecar cannot be dialled (it runs in
    /// another network namespace, such as a pod's, and takes its connections from the tunnel port as
    /// descriptors): the TLS server name (<see cref="TunnelServerName"/>) to send to the node's tunnel
    /// port, which <see cref="TunnelEndpoint"/> then names; null for a workload of this agent dialled directly.
    /// </summary>
    public string? ServerName { get; set; }

    /// <summary>
    /// For a remote route whose node advertises QUIC (capability <c>h3</c>): that node's QUIC tunnel
    /// endpoint (UDP), IP:PORT; null otherwise (the route is reached over TCP only).
    /// </summary>
    public string? Quic { get; set; }
}
