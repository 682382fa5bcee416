using System.Net;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// Finds the replicas of a store across the mesh: those on this node through
/// <paramref name="local"/> (the store's directory), and one peer per other node that runs the
/// workload (<see cref="IReplicaMesh.RemoteNodes"/>), reached at that node's tunnel port. Within a
/// node the replicas repair each other, so one reachable replica per node is enough for every
/// write to reach every replica.
/// </summary>
internal sealed class MeshReplicaDiscovery(IReplicaDiscovery local, IReplicaMesh mesh) : IReplicaDiscovery
{
    private volatile IReadOnlyDictionary<IPEndPoint, string> _serverNames = new Dictionary<IPEndPoint, string>();

    /// <inheritdoc />
    public IReadOnlyList<IPEndPoint> FindPeers()
    {
        var peers = new List<IPEndPoint>(local.FindPeers());
        var names = new Dictionary<IPEndPoint, string>();
        foreach (ReplicaNode node in mesh.RemoteNodes())
        {
            if (names.TryAdd(node.TunnelEndPoint, node.ServerName))
            {
                peers.Add(node.TunnelEndPoint);
            }
        }

        _serverNames = names;
        return peers;
    }

    /// <summary>
    /// The server name to send to <paramref name="peer"/> when it is another node's tunnel port (as
    /// of the last <see cref="FindPeers"/>); null for a replica of this node, dialled directly.
    /// </summary>
    public string? ServerNameOf(IPEndPoint peer) => _serverNames.GetValueOrDefault(peer);
}
