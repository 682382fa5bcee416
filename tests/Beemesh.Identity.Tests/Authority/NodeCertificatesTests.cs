using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Tests.Authority;

public sealed class NodeCertificatesTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly CertificateAuthority _root;

    public NodeCertificatesTests()
    {
        _root = CertificateAuthority.LoadOrCreate(_dir.File("first"));
    }

    public void Dispose()
    {
        _root.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void NodeCaIsAPathLengthZeroIntermediateNameConstrainedToTheTrustDomain()
    {
        using NodeCredentials node = NodeTestCredentials.Issue(_root, "worker-1");
        X509Certificate2 ca = node.NodeCa;

        var basic = Assert.Single(ca.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.True(basic.Critical);
        Assert.True(basic.CertificateAuthority);
        Assert.True(basic.HasPathLengthConstraint);
        Assert.Equal(0, basic.PathLengthConstraint);
        var usage = Assert.Single(ca.Extensions.OfType<X509KeyUsageExtension>());
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, usage.KeyUsages);

        X509Extension constraint = Assert.Single(ca.Extensions.Cast<X509Extension>(), e => e.Oid?.Value == "2.5.29.30");
        Assert.True(constraint.Critical);
        Assert.Equal(["example.org"], PermittedUris(constraint.RawData));

        Assert.Equal(SvidValidationResult.Valid, SvidValidator.TryGetSpiffeId(ca, out SpiffeId? caId));
        Assert.Equal("spiffe://example.org/node/worker-1", caId!.ToString());
        Assert.Equal(_root.Root.SubjectName.RawData, ca.IssuerName.RawData);
    }

    [Fact]
    public void NodeSvidIsSignedByTheRootAndNamesTheNode()
    {
        using NodeCredentials node = NodeTestCredentials.Issue(_root, "worker-1");
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(
            node.NodeSvid, null, _root.Bundle, "example.org", DateTimeOffset.UtcNow, out SpiffeId? id));
        Assert.Equal("spiffe://example.org/node/worker-1", id!.ToString());
        Assert.Equal("worker-1", NodeSvidValidator.Validate(node.NodeSvid, _root.Bundle, "example.org", DateTimeOffset.UtcNow, out string? error));
        Assert.Null(error);
    }

    [Fact]
    public void JoinedNodeIssuesWorkloadSvidsThatChainThroughItsNodeCaToTheRootBundle()
    {
        using CertificateAuthority node = NodeTestCredentials.Join(_root, "worker-1", _dir.File("joined"));
        Assert.False(node.HoldsRoot);
        Assert.Equal("worker-1", node.NodeName);
        Assert.Equal(_root.Root.RawData, node.Root.RawData);
        Assert.Equal(_root.Root.RawData, Assert.Single(node.Bundle).RawData);
        Assert.False(File.Exists(_dir.File("joined/ca.key")));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 leaf = node.IssueX509Svid("spiffe://example.org/ns/shop/sa/web", key);
        X509Certificate2 nodeCa = Assert.Single(node.Intermediates);
        Assert.Equal(nodeCa.SubjectName.RawData, leaf.IssuerName.RawData);

        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(
            leaf, [nodeCa], _root.Bundle, "example.org", DateTimeOffset.UtcNow, out SpiffeId? id));
        Assert.Equal("spiffe://example.org/ns/shop/sa/web", id!.ToString());
        // Without the node CA the bundle (the root alone) cannot reach the leaf.
        Assert.Equal(SvidValidationResult.UntrustedChain, SvidValidator.Validate(
            leaf, null, _root.Bundle, "example.org", DateTimeOffset.UtcNow, out _));
        // And a workload SVID is never a node identity, whatever issued it.
        Assert.Null(NodeSvidValidator.Validate(leaf, _root.Bundle, "example.org", DateTimeOffset.UtcNow, out string? error));
        Assert.NotNull(error);
    }

    [Fact]
    public void JoinedNodeRefusesIdsOutsideItsTrustDomainAndNodeIds()
    {
        using CertificateAuthority node = NodeTestCredentials.Join(_root, "worker-1", _dir.File("joined"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Throws<ArgumentException>(() => node.IssueX509Svid("spiffe://other.org/ns/x/sa/y", key));
        Assert.Throws<ArgumentException>(() => node.IssueX509Svid("spiffe://example.org/node/worker-2", key));
        Assert.Throws<ArgumentException>(() => _root.IssueX509Svid("spiffe://example.org/node/worker-2", key));
        Assert.Throws<InvalidOperationException>(() => node.IssueNodeCertificates(
            "worker-3", NodeTestCredentials.PublicKeyOf(key), NodeTestCredentials.PublicKeyOf(key)));
    }

    [Fact]
    public void PathValidationEnforcesTheNodeCasUriNameConstraint()
    {
        using NodeCredentials node = NodeTestCredentials.Issue(_root, "worker-1");
        // What a node CA key holder could forge past the issuing API: a leaf of another trust domain.
        using X509Certificate2 forged = Forge(node.NodeCa, "spiffe://other.org/ns/x/sa/y", ca: false);

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_root.Root);
        chain.ChainPolicy.ExtraStore.Add(node.NodeCa);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.False(chain.Build(forged));
        Assert.Contains(chain.ChainStatus, s => s.Status == X509ChainStatusFlags.HasNotPermittedNameConstraint);

        // Even checked against the root as if it were other.org's bundle, the path fails.
        Assert.Equal(SvidValidationResult.UntrustedChain, SvidValidator.Validate(
            forged, [node.NodeCa], _root.Bundle, "other.org", DateTimeOffset.UtcNow, out _));

        // The same forgery inside the trust domain builds, so the failure above is the constraint's.
        using X509Certificate2 inside = Forge(node.NodeCa, "spiffe://example.org/ns/x/sa/y", ca: false);
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(
            inside, [node.NodeCa], _root.Bundle, "example.org", DateTimeOffset.UtcNow, out _));
    }

    [Fact]
    public void NodeCaCannotCreateAnotherCa()
    {
        using NodeCredentials node = NodeTestCredentials.Issue(_root, "worker-1");
        using X509Certificate2 subCa = Forge(node.NodeCa, "spiffe://example.org/sub", ca: true);
        using X509Certificate2 leaf = Forge(subCa, "spiffe://example.org/ns/x/sa/y", ca: false);
        Assert.Equal(SvidValidationResult.UntrustedChain, SvidValidator.Validate(
            leaf, [node.NodeCa, subCa], _root.Bundle, "example.org", DateTimeOffset.UtcNow, out _));
    }

    [Fact]
    public void LeafOfANodeCaFromAnotherRootIsRefused()
    {
        // Same trust domain name, different root: e.g. a node that joined an impostor.
        using CertificateAuthority foreign = CertificateAuthority.LoadOrCreate(_dir.File("foreign"));
        using CertificateAuthority node = NodeTestCredentials.Join(foreign, "worker-1", _dir.File("joined"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 leaf = node.IssueX509Svid("spiffe://example.org/ns/x/sa/y", key);
        Assert.Equal(SvidValidationResult.UntrustedChain, SvidValidator.Validate(
            leaf, node.Intermediates, _root.Bundle, "example.org", DateTimeOffset.UtcNow, out _));
    }

    [Fact]
    public void NodeIdentitySignedByANodeCaIsNotANodeIdentity()
    {
        using NodeCredentials node = NodeTestCredentials.Issue(_root, "worker-1");
        using X509Certificate2 forged = Forge(node.NodeCa, "spiffe://example.org/node/worker-2", ca: false);
        // A valid workload-style chain...
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(
            forged, [node.NodeCa], _root.Bundle, "example.org", DateTimeOffset.UtcNow, out _));
        // ...but not a node identity.
        Assert.Null(NodeSvidValidator.Validate(forged, _root.Bundle, "example.org", DateTimeOffset.UtcNow, out string? error));
        Assert.Contains("root", error);
    }

    [Fact]
    public void JoinedStateReloadsAsTheSameNodeAndRefusesAnotherTrustDomain()
    {
        string state = _dir.File("joined");
        using (CertificateAuthority first = NodeTestCredentials.Join(_root, "worker-1", state))
        {
            Assert.False(first.HoldsRoot);
        }

        using CertificateAuthority again = CertificateAuthority.LoadOrCreate(state);
        Assert.Equal("worker-1", again.NodeName);
        Assert.Equal(_root.Root.RawData, again.Root.RawData);
        Assert.Throws<InvalidOperationException>(() => CertificateAuthority.LoadOrCreate(state, "other.org"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(state, "node", "node-ca.key")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(state, "node", "node.key")));
        Assert.Throws<IOException>(() => NodeCredentialStore.Save(state, NodeTestCredentials.Issue(_root, "worker-2")));
    }

    [Fact]
    public void StateWithBothARootKeyAndNodeCredentialsIsRefused()
    {
        string state = _dir.File("both");
        using (CertificateAuthority.LoadOrCreate(state))
        {
        }

        using (NodeCredentials credentials = NodeTestCredentials.Issue(_root, "worker-1"))
        {
            NodeCredentialStore.Save(state, credentials);
        }

        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.LoadOrCreate(state));
        Assert.Contains("both a root key", e.Message);
    }

    [Fact]
    public void TamperedCredentialsAreRefusedOnLoad()
    {
        using CertificateAuthority foreign = CertificateAuthority.LoadOrCreate(_dir.File("foreign"));
        string state = _dir.File("joined");
        using (NodeCredentials credentials = NodeTestCredentials.Issue(_root, "worker-1"))
        {
            NodeCredentialStore.Save(state, credentials);
        }

        // Swap in another root: the node certificates no longer chain to it.
        File.WriteAllText(Path.Combine(state, "node", "root.crt"), foreign.Root.ExportCertificatePem());
        Assert.Throws<InvalidOperationException>(() => NodeCredentialStore.Load(state));
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("worker-1", true)]
    [InlineData("0node", true)]
    [InlineData("", false)]
    [InlineData("-a", false)]
    [InlineData("a-", false)]
    [InlineData("Worker", false)]
    [InlineData("a.b", false)]
    [InlineData("a_b", false)]
    public void NodeNamesAreDns1123Labels(string name, bool valid)
    {
        Assert.Equal(valid, NodeNames.IsValid(name));
        Assert.Equal(valid, NodeNames.Check(name) is null);
    }

    [Fact]
    public void NodeNameLengthLimitIs63()
    {
        Assert.True(NodeNames.IsValid(new string('a', 63)));
        Assert.False(NodeNames.IsValid(new string('a', 64)));
    }

    private static X509Certificate2 Forge(X509Certificate2 issuer, string uri, bool ca)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("O=forged", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(ca, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            ca ? X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign : X509KeyUsageFlags.DigitalSignature, critical: true));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(uri));
        request.CertificateExtensions.Add(san.Build());
        DateTimeOffset notBefore = new(issuer.NotBefore.ToUniversalTime());
        using X509Certificate2 certificate = request.Create(issuer, notBefore, notBefore.AddHours(1), RandomNumberGenerator.GetBytes(8));
        return certificate.CopyWithPrivateKey(key);
    }

    private static List<string> PermittedUris(byte[] der)
    {
        var result = new List<string>();
        AsnReader subtrees = new AsnReader(der, AsnEncodingRules.DER).ReadSequence()
            .ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0));
        while (subtrees.HasData)
        {
            AsnReader subtree = subtrees.ReadSequence();
            result.Add(subtree.ReadCharacterString(UniversalTagNumber.IA5String, new Asn1Tag(TagClass.ContextSpecific, 6)));
        }

        return result;
    }
}
