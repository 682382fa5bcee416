using System.Net.Security;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Tunnel;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// The <see cref="IReplicaMesh"/> of a workload's sidecar: other nodes' replicas come from the
/// routes of its <see cref="AgentMeshDirectory"/> (the agent's watched workload list, which holds
/// the routes other nodes signed and keep leasing), and their connections arrive at its
/// <see cref="TunnelServer"/>.
/// </summary>
public sealed class SidecarReplicaMesh(AgentMeshDirectory directory, TunnelServer tunnel, string name, string ns) : IReplicaMesh
{
    /// <inheritdoc />
    public IReadOnlyList<ReplicaNode> RemoteNodes()
    {
        var nodes = new List<ReplicaNode>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (MeshPeer peer in directory.RemoteWorkloads(name, ns))
        {
            if (peer.NodeName is { } node && peer.ServerName is { } serverName && seen.Add(node))
            {
                nodes.Add(new ReplicaNode(node, peer.TunnelEndpoint, serverName));
            }
        }

        return nodes;
    }

    /// <inheritdoc />
    public IDisposable Serve(SslApplicationProtocol protocol, Func<SslStream, Task> serve) => tunnel.ServeProtocol(protocol, serve);
}
