using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Sidecar.State.Strong;

/// <summary>What a workload's replicated stores (strong and eventual) share: its identity and the directory of its stores.</summary>
/// <param name="Directory">
/// <c>STATE/state/NAMESPACE/NAME</c> under the agent's state directory: every replica of the
/// workload on this node finds the others there (one sub-directory per store).
/// </param>
/// <param name="Source">The workload's SVIDs and bundles.</param>
/// <param name="Identity">The workload's SPIFFE ID.</param>
public sealed record StrongStoreContext(string Directory, X509Source Source, SpiffeId Identity)
{
    /// <summary>
    /// How replicas on other nodes are found and reached (the agent's routes and the node's tunnel
    /// port); null when the workload's replicas meet only on this node.
    /// </summary>
    public Replicas.IReplicaMesh? Mesh { get; init; }

    /// <summary>
    /// The address the replicas' links (Raft, forwarding, anti-entropy) listen on and give the
    /// workload's other replicas on this node: the loopback (the default) when they share this
    /// network namespace, a pod's own address when each replica is in a pod of its own.
    /// </summary>
    public System.Net.IPAddress ListenAddress { get; init; } = System.Net.IPAddress.Loopback;
}
