using System.Net.Security;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// How the replicas of a workload on different nodes reach each other: through each node's tunnel
/// port, like any cross-node flow. A replica learns which other nodes run the workload from the
/// agent's routes (<see cref="RemoteNodes"/>), dials a node's tunnel port with the workload's own
/// server name and a store's protocol (ALPN), and the node routes that connection by name to a
/// sidecar of the workload there, which serves it with the store's link (<see cref="Serve"/>).
/// Mutual TLS stays end to end between the two sidecars, and each side accepts only its own
/// workload's SPIFFE ID.
/// </summary>
public interface IReplicaMesh
{
    /// <summary>
    /// The other nodes that run the workload now, one entry per node, from the routes in place
    /// (kept by a watch on the agent, so this never waits).
    /// </summary>
    IReadOnlyList<ReplicaNode> RemoteNodes();

    /// <summary>
    /// Serves connections that arrive at this sidecar's tunnel with <paramref name="protocol"/>
    /// (ALPN) by <paramref name="serve"/>, until the registration is disposed.
    /// </summary>
    IDisposable Serve(SslApplicationProtocol protocol, Func<SslStream, Task> serve);
}
