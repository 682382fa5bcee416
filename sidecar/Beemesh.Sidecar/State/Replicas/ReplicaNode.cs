using System.Net;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>Another node that runs a replica of the workload (<see cref="IReplicaMesh.RemoteNodes"/>).</summary>
/// <param name="Node">The node's name (the signer of the route).</param>
/// <param name="TunnelEndPoint">The node's tunnel port.</param>
/// <param name="ServerName">The TLS server name the node routes to a sidecar of the workload.</param>
public sealed record ReplicaNode(string Node, IPEndPoint TunnelEndPoint, string ServerName);
