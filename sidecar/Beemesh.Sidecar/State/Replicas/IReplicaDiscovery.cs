using System.Net;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// Where the other running replicas of a workload's store take requests. Asked again before every
/// anti-entropy round, so replicas that start or stop are picked up. The replicas of one node find
/// each other in the agent's state directory (<see cref="StateDirectoryDiscovery"/>); replicas on
/// other nodes can be found through the agent's routes by another implementation.
/// </summary>
public interface IReplicaDiscovery
{
    /// <summary>The peers' endpoints now (never this replica's own).</summary>
    IReadOnlyList<IPEndPoint> FindPeers();
}
