using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Sidecar.Mesh;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>A directory filled by the test.</summary>
internal sealed class StaticMeshDirectory : IMeshDirectory
{
    private readonly ConcurrentDictionary<IPAddress, MeshPeer> _byAddress = new();
    private volatile HashSet<string> _revokedNodes = new(StringComparer.Ordinal);

    /// <summary>Adds <paramref name="nodeName"/> to the revoked nodes (as the agent's list would).</summary>
    public void RevokeNode(string nodeName) => _revokedNodes = new HashSet<string>(_revokedNodes.Append(nodeName), StringComparer.Ordinal);

    /// <summary>The revoked node names.</summary>
    public IReadOnlySet<string> RevokedNodes => _revokedNodes;

    public string? RevokedIssuerOf(X509Certificate2 peerCertificate) => NodeIssuer.RevokedNodeOf(peerCertificate, _revokedNodes);

    public void Add(MeshPeer peer) => _byAddress[peer.MeshAddress] = peer;

    public void Remove(IPAddress meshAddress) => _byAddress.TryRemove(meshAddress, out _);

    public MeshPeer? ResolveAddress(IPAddress address) => _byAddress.TryGetValue(address, out MeshPeer? peer) ? peer : null;

    public MeshPeer? ResolveIdentity(SpiffeId id)
    {
        foreach (MeshPeer peer in _byAddress.Values)
        {
            if (peer.SpiffeId == id)
            {
                return peer;
            }
        }

        return null;
    }
}
