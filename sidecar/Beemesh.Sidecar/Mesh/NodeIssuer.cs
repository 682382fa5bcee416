using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// Which node issued a peer's SVID. A joined node's workload SVIDs are signed by its node CA, an
/// intermediate whose URI SAN is <c>spiffe://TD/node/NAME</c>; the peer sends it in the handshake
/// (the trust bundle holds roots only, so without it the chain does not verify), and
/// <see cref="SpiffeTls.GetPeerIntermediates"/> keeps it with the connection. A node removed from
/// the mesh keeps its certificates until they expire, so its workloads' SVIDs still chain to the
/// root: the revoked node names are what cuts them.
/// </summary>
public static class NodeIssuer
{
    private const string NodePathPrefix = "/node/";

    /// <summary>
    /// The name of a node in <paramref name="revokedNodes"/> whose node CA is among the certificates
    /// the peer sent with <paramref name="peerCertificate"/> (same trust domain as the peer's SPIFFE
    /// ID), or null when none is. A certificate that is not an SVID names no node.
    /// </summary>
    public static string? RevokedNodeOf(X509Certificate2 peerCertificate, IReadOnlySet<string> revokedNodes)
    {
        ArgumentNullException.ThrowIfNull(peerCertificate);
        ArgumentNullException.ThrowIfNull(revokedNodes);
        if (revokedNodes.Count == 0
            || SvidValidator.TryGetSpiffeId(peerCertificate, out SpiffeId? peer) != SvidValidationResult.Valid
            || SpiffeTls.GetPeerIntermediates(peerCertificate) is not { } sent)
        {
            return null;
        }

        foreach (X509Certificate2 certificate in sent)
        {
            if (NodeNameOf(certificate, peer!.TrustDomain) is { } node && revokedNodes.Contains(node))
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>The node NAME of a certificate whose URI SAN is <c>spiffe://TRUSTDOMAIN/node/NAME</c>, else null.</summary>
    public static string? NodeNameOf(X509Certificate2 certificate, string trustDomain)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (SvidValidator.TryGetSpiffeId(certificate, out SpiffeId? id) != SvidValidationResult.Valid
            || id!.TrustDomain != trustDomain || !id.Path.StartsWith(NodePathPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        string name = id.Path[NodePathPrefix.Length..];
        return name.Length == 0 || name.Contains('/', StringComparison.Ordinal) ? null : name;
    }
}
