using System.Net;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// Finds the replicas of a store running on this node: the live slots (<see cref="ReplicaSlot"/>)
/// in the store's directory under the agent's state directory, each with the endpoint it recorded
/// under <see cref="EndPointName"/>.
/// </summary>
internal sealed class StateDirectoryDiscovery(string storeDirectory, string? ownSlot) : IReplicaDiscovery
{
    /// <summary>The name eventual replicas record their endpoint under.</summary>
    public const string EndPointName = "eventual";

    /// <inheritdoc />
    public IReadOnlyList<IPEndPoint> FindPeers() => ReplicaSlot.LivePeers(storeDirectory, EndPointName, ownSlot);
}
