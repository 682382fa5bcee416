using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Authority;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class X509RecordVerifierTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-rv-").FullName;

    [Fact]
    public void RecordsAreAcceptedOnlyFromNodesOfTheTrustDomainForTheirOwnOrigin()
    {
        using CertificateAuthority ours = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "ours"), "mesh.test");
        using CertificateAuthority foreign = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "foreign"), "mesh.test");
        using NodeIdentity a = NodeIdentity.IssueFromRoot(ours, "a");
        using NodeIdentity b = NodeIdentity.IssueFromRoot(ours, "b");
        using NodeIdentity impostor = NodeIdentity.IssueFromRoot(foreign, "a");
        var verifier = new X509RecordVerifier(ours.Root, "mesh.test");
        ulong idA = NodeIds.Of("mesh.test", "a");

        OverlayRecord good = Signed(a, idA, "payload");
        Assert.Null(verifier.Verify(good));
        Assert.Equal("a", verifier.SignerName(good));

        // Same name, same trust domain name, another root: refused as a foreign chain.
        Assert.Equal(RecordRefusal.ForeignChain, verifier.Verify(Signed(impostor, idA, "payload")));

        // A valid node signing a record that claims another node's origin.
        Assert.Equal(RecordRefusal.BadSignature, verifier.Verify(Signed(b, idA, "payload")));

        // The payload altered after signing.
        var altered = new OverlayRecord(good.Kind, good.Key, good.Subject, good.Version, good.ExpiresAt, false, "changed"u8.ToArray(), good.Signature);
        Assert.Equal(RecordRefusal.BadSignature, verifier.Verify(altered));

        // A truncated signature field.
        Assert.Equal(RecordRefusal.BadSignature, verifier.Verify(good.WithSignature(good.Signature[..^1])));

        verifier.Revoked[idA] = true;
        Assert.Equal(RecordRefusal.RevokedSigner, verifier.Verify(good));
    }

    [Fact]
    public void CertificateWithAnExtensionThatIsNotDerIsRefusedNotThrown()
    {
        // A certificate that loads but whose basicConstraints value is not DER (decoded lazily,
        // during validation): the verifier must refuse the record, not throw into the overlay.
        using CertificateAuthority ours = CertificateAuthority.LoadOrCreate(Path.Combine(_root, "ours"), "mesh.test");
        var verifier = new X509RecordVerifier(ours.Root, "mesh.test");
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=a", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509Extension("2.5.29.19", new byte[] { 0x1A, 0x00 }, true));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri("spiffe://mesh.test/node/a"));
        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 bad = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        ulong idA = NodeIds.Of("mesh.test", "a");
        var record = new OverlayRecord(RecordKind.Node, "a", 0, new RecordVersion(new HlcTimestamp(1_000, 0), idA), 0, false, "{}"u8.ToArray());
        byte[] signature = new byte[2 + bad.RawData.Length + 64];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(signature, (ushort)bad.RawData.Length);
        bad.RawData.CopyTo(signature, 2);
        Assert.Equal(RecordRefusal.ForeignChain, verifier.Verify(record.WithSignature(signature)));
    }

    [Fact]
    public void NodeIdsDependOnTrustDomainAndName()
    {
        Assert.Equal(NodeIds.Of("mesh.test", "a"), NodeIds.Of("mesh.test", "a"));
        Assert.NotEqual(NodeIds.Of("mesh.test", "a"), NodeIds.Of("mesh.test", "b"));
        Assert.NotEqual(NodeIds.Of("mesh.test", "a"), NodeIds.Of("other.test", "a"));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static OverlayRecord Signed(NodeIdentity node, ulong origin, string payload)
    {
        var record = new OverlayRecord(RecordKind.Node, "k", origin, new RecordVersion(new HlcTimestamp(1_000, 0), origin), 0, false, System.Text.Encoding.UTF8.GetBytes(payload));
        return record.WithSignature(new X509RecordSigner(node.Svid).Sign(record));
    }
}
