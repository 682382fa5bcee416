using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe;

namespace Beemesh.Identity.Authority;

/// <summary>
/// What a node receives when it joins a trust domain: the root (its trust bundle), its node CA
/// (an intermediate, with the private key the node generated itself) and its node SVID
/// <c>spiffe://TD/node/N</c> (a root-signed leaf, with its private key). Owns the certificates.
/// </summary>
public sealed class NodeCredentials : IDisposable
{
    /// <summary>Wraps the given certificates; <paramref name="nodeCa"/> and <paramref name="nodeSvid"/> carry private keys.</summary>
    public NodeCredentials(string nodeName, string trustDomain, X509Certificate2 root, X509Certificate2 nodeCa, X509Certificate2 nodeSvid)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(nodeCa);
        ArgumentNullException.ThrowIfNull(nodeSvid);
        NodeName = nodeName;
        TrustDomain = trustDomain;
        Root = root;
        NodeCa = nodeCa;
        NodeSvid = nodeSvid;
    }

    /// <summary>The node's name (a DNS-1123 label).</summary>
    public string NodeName { get; }

    /// <summary>The trust domain, read from the root's URI SAN.</summary>
    public string TrustDomain { get; }

    /// <summary>The node's SPIFFE ID, <c>spiffe://TD/node/N</c>.</summary>
    public SpiffeId NodeId => NodeNames.ToSpiffeId(TrustDomain, NodeName);

    /// <summary>The trust domain's root certificate (no private key): the trust bundle.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>The node CA certificate with its private key.</summary>
    public X509Certificate2 NodeCa { get; }

    /// <summary>The node SVID with its private key.</summary>
    public X509Certificate2 NodeSvid { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Root.Dispose();
        NodeCa.Dispose();
        NodeSvid.Dispose();
    }
}
