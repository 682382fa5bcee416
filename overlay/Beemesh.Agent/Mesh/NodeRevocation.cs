using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Beemesh.Identity.Authority;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// A node revocation: a record of kind <c>Revocation</c>, key the node's name, subject its node id,
/// never expiring, published by the first node (signed, as every record, with its node SVID). Its
/// payload is the root's own ECDSA signature over <c>beemesh-revoke\nTD\nNAME</c>, so only the holder
/// of the root key can revoke a node: another node's SVID alone does not make a valid revocation.
/// </summary>
public static class NodeRevocation
{
    /// <summary>The bytes the root signs to revoke <paramref name="nodeName"/> of <paramref name="trustDomain"/>.</summary>
    public static byte[] Statement(string trustDomain, string nodeName) => Encoding.UTF8.GetBytes($"beemesh-revoke\n{trustDomain}\n{nodeName}");

    /// <summary>The record payload revoking <paramref name="nodeName"/>: the root's signature over <see cref="Statement"/>.</summary>
    public static byte[] Sign(CertificateAuthority authority, string nodeName)
    {
        ArgumentNullException.ThrowIfNull(authority);
        return authority.SignWithRoot(Statement(authority.TrustDomain, nodeName));
    }

    /// <summary>True when <paramref name="payload"/> is the signature of <paramref name="root"/> revoking <paramref name="nodeName"/>.</summary>
    public static bool Verify(X509Certificate2 root, string trustDomain, string nodeName, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(root);
        using ECDsa? key = root.GetECDsaPublicKey();
        return key is not null
            && payload.Length == 64
            && key.VerifyData(Statement(trustDomain, nodeName), payload, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }
}
