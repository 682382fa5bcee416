using System.Net;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The sidecar's view of mesh membership (fed by the node agent's routes in production). Lookups
/// run on the netstack loop thread (<see cref="ResolveAddress"/> from the flow redirector), so
/// implementations must answer from memory and never block.
/// </summary>
public interface IMeshDirectory
{
    /// <summary>The workload owning mesh address <paramref name="address"/>, or null when it is not a mesh address.</summary>
    MeshPeer? ResolveAddress(IPAddress address);

    /// <summary>The workload with identity <paramref name="id"/>, or null when unknown (used for the caller's mesh address).</summary>
    MeshPeer? ResolveIdentity(SpiffeId id);
}
