using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The sidecar's view of mesh membership (fed by the node agent's routes in production). Lookups
/// run on the netstack loop thread (<see cref="ResolveAddress"/> from the flow redirector), so
/// implementations must answer from memory and never block.
/// </summary>
public interface IMeshDirectory
{
    /// <summary>
    /// A workload reached at mesh address <paramref name="address"/> (for a service of several
    /// replicas, the first), or null when it is not a mesh address.
    /// </summary>
    MeshPeer? ResolveAddress(IPAddress address);

    /// <summary>
    /// The replica to carry a new connection to mesh address <paramref name="address"/>: one of the
    /// replicas of the service the address leads to (each call may choose another), or null when it is
    /// not a mesh address. By default <see cref="ResolveAddress"/>'s answer.
    /// </summary>
    MeshPeer? PickReplica(IPAddress address) => ResolveAddress(address);

    /// <summary>The workload with identity <paramref name="id"/> as last known, or null when unknown; answers from memory.</summary>
    MeshPeer? ResolveIdentity(SpiffeId id);

    /// <summary>
    /// The workload with identity <paramref name="id"/> for a new inbound flow (the caller's mesh
    /// address). Unlike <see cref="ResolveIdentity"/> it may ask the source of truth on a miss, since
    /// a workload that registered a moment ago may call before the last refresh saw it.
    /// </summary>
    ValueTask<MeshPeer?> ResolveIdentityAsync(SpiffeId id, CancellationToken cancellationToken = default) => ValueTask.FromResult(ResolveIdentity(id));

    /// <summary>
    /// The name of the node removed from the mesh that issued <paramref name="peerCertificate"/> (a
    /// peer's SVID as presented in its handshake), or null when no revoked node did; answers from memory.
    /// </summary>
    string? RevokedIssuerOf(X509Certificate2 peerCertificate) => null;
}
