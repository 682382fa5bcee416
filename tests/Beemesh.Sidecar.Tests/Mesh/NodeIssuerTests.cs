using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tests.Mesh;

public sealed class NodeIssuerTests
{
    [Fact]
    public void NodeNameOf_ReadsTheNodeCasUriOnly()
    {
        using var dir = new TempDirectory();
        using CertificateAuthority authority = CertificateAuthority.LoadOrCreate(dir.File("root"));
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        (X509Certificate2 nodeCa, X509Certificate2 nodeSvid) = authority.IssueNodeCertificates("node-7", PublicKeyOf(caKey), PublicKeyOf(svidKey));
        using (nodeCa)
        using (nodeSvid)
        {
            Assert.Equal("node-7", NodeIssuer.NodeNameOf(nodeCa, authority.TrustDomain));
            Assert.Null(NodeIssuer.NodeNameOf(nodeCa, "other.org"));
            using X509Certificate2 workload = authority.IssueX509Svid($"spiffe://{authority.TrustDomain}/ns/default/sa/web", svidKey);
            Assert.Null(NodeIssuer.NodeNameOf(workload, authority.TrustDomain));
            Assert.Null(NodeIssuer.NodeNameOf(authority.Root, authority.TrustDomain));
        }
    }

    [Fact]
    public void RevokedNodeOf_IsNullWithoutRevocationsOrWithoutSentIntermediates()
    {
        using var dir = new TempDirectory();
        using CertificateAuthority authority = CertificateAuthority.LoadOrCreate(dir.File("root"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 workload = authority.IssueX509Svid($"spiffe://{authority.TrustDomain}/ns/default/sa/web", key);

        Assert.Null(NodeIssuer.RevokedNodeOf(workload, new HashSet<string>()));
        // Signed by the root directly (the first node): no node CA was sent, no node can be named.
        Assert.Null(NodeIssuer.RevokedNodeOf(workload, new HashSet<string> { "node-1" }));
    }

    private static PublicKey PublicKeyOf(ECDsa key) => new CertificateRequest("CN=unused", key, HashAlgorithmName.SHA256).PublicKey;
}
