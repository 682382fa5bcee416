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
}
