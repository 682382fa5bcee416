using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;

namespace Beemesh.Identity.Tests.Authority;

/// <summary>Gives a node its credentials from a root CA in-process (what the join exchange does over TLS).</summary>
internal static class NodeTestCredentials
{
    public static NodeCredentials Issue(CertificateAuthority root, string nodeName)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        (X509Certificate2 nodeCa, X509Certificate2 nodeSvid) = root.IssueNodeCertificates(nodeName, PublicKeyOf(caKey), PublicKeyOf(svidKey));
        using (nodeCa)
        using (nodeSvid)
        {
            return new NodeCredentials(
                nodeName,
                root.TrustDomain,
                X509CertificateLoader.LoadCertificate(root.Root.RawData),
                nodeCa.CopyWithPrivateKey(caKey),
                nodeSvid.CopyWithPrivateKey(svidKey));
        }
    }

    /// <summary>Saves the credentials of <paramref name="nodeName"/> in <paramref name="stateDirectory"/> and loads its CA.</summary>
    public static CertificateAuthority Join(CertificateAuthority root, string nodeName, string stateDirectory, TimeProvider? time = null)
    {
        using (NodeCredentials credentials = Issue(root, nodeName))
        {
            NodeCredentialStore.Save(stateDirectory, credentials);
        }

        return CertificateAuthority.LoadOrCreate(stateDirectory, root.TrustDomain, time);
    }

    public static PublicKey PublicKeyOf(ECDsa key) =>
        new CertificateRequest("CN=unused", key, HashAlgorithmName.SHA256).PublicKey;
}
