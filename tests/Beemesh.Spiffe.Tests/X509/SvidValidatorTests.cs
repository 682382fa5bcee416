using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Spiffe.Tests.X509;

public sealed class SvidValidatorTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly ECDsa _rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _root;

    public SvidValidatorTests()
    {
        var request = new CertificateRequest("CN=test root", _rootKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _root = request.CreateSelfSigned(Now.AddDays(-10), Now.AddDays(10));
    }

    public void Dispose()
    {
        _root.Dispose();
        _rootKey.Dispose();
    }

    [Fact]
    public void WellFormedSvidIsValidAndChainBuildsWithDotNet()
    {
        using X509Certificate2 leaf = Leaf();
        SvidValidationResult result = Validate(leaf, out SpiffeId? id);
        Assert.Equal(SvidValidationResult.Valid, result);
        Assert.Equal("spiffe://example.org/ns/default/sa/web", id!.ToString());

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = Now.UtcDateTime;
        Assert.True(chain.Build(leaf));
        Assert.Equal(2, chain.ChainElements.Count);
    }

    [Fact]
    public void OtherTrustDomainIsRefused() =>
        Assert.Equal(SvidValidationResult.OtherTrustDomain, Validate(Leaf(uris: ["spiffe://other.org/web"]), out _));

    [Fact]
    public void ExpiredLeafIsRefused() =>
        Assert.Equal(SvidValidationResult.Expired, Validate(Leaf(notBefore: Now.AddHours(-2), notAfter: Now.AddHours(-1)), out _));

    [Fact]
    public void NotYetValidLeafIsRefused() =>
        Assert.Equal(SvidValidationResult.NotYetValid, Validate(Leaf(notBefore: Now.AddHours(1), notAfter: Now.AddHours(2)), out _));

    [Fact]
    public void CaLeafIsRefused() =>
        Assert.Equal(SvidValidationResult.LeafIsCa, Validate(Leaf(isCa: true), out _));

    [Fact]
    public void LeafWithoutUriSanIsRefused() =>
        Assert.Equal(SvidValidationResult.NoUriSan, Validate(Leaf(uris: []), out _));

    [Fact]
    public void LeafWithTwoUriSansIsRefused() =>
        Assert.Equal(SvidValidationResult.MultipleUriSans, Validate(Leaf(uris: ["spiffe://example.org/a", "spiffe://example.org/b"]), out _));

    [Theory]
    [InlineData(X509KeyUsageFlags.KeyEncipherment)]
    [InlineData(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign)]
    [InlineData(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.CrlSign)]
    public void WrongKeyUsageIsRefused(X509KeyUsageFlags usage) =>
        Assert.Equal(SvidValidationResult.BadKeyUsage, Validate(Leaf(keyUsage: usage), out _));

    [Fact]
    public void MissingKeyUsageIsRefused() =>
        Assert.Equal(SvidValidationResult.BadKeyUsage, Validate(Leaf(keyUsage: null), out _));

    [Theory]
    [InlineData("https://example.org/web")]
    [InlineData("spiffe://example.org/a/../b")]
    [InlineData("spiffe://Example.org/web")]
    public void MalformedSpiffeIdIsRefused(string uri) =>
        Assert.Equal(SvidValidationResult.MalformedSpiffeId, Validate(Leaf(uris: [uri]), out _));

    [Theory]
    [InlineData("basicConstraints", new byte[] { 0x1A, 0x00 })]
    [InlineData("basicConstraints", new byte[] { 0x30, 0x03, 0x01, 0x01, 0xFF, 0x00 })]
    [InlineData("keyUsage", new byte[] { 0x30, 0x00 })]
    public void ExtensionThatIsNotValidDerIsMalformedNotAnException(string extension, byte[] der)
    {
        // The certificate loads (extensions decode lazily); reading the extension must not throw.
        using X509Certificate2 leaf = extension == "keyUsage" ? Leaf(keyUsageDer: der) : Leaf(basicConstraintsDer: der);
        Assert.Equal(SvidValidationResult.MalformedExtension, Validate(leaf, out _));
    }

    [Fact]
    public void LeafSignedByAnotherRootIsUntrusted()
    {
        using ECDsa otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=other root", otherKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using X509Certificate2 otherRoot = request.CreateSelfSigned(Now.AddDays(-10), Now.AddDays(10));
        using X509Certificate2 leaf = Leaf(issuer: otherRoot);
        Assert.Equal(SvidValidationResult.UntrustedChain, Validate(leaf, out _));
    }

    [Fact]
    public void EmptyBundleIsUntrusted()
    {
        using X509Certificate2 leaf = Leaf();
        Assert.Equal(SvidValidationResult.UntrustedChain, SvidValidator.Validate(leaf, null, [], "example.org", Now, out _));
    }

    private SvidValidationResult Validate(X509Certificate2 leaf, out SpiffeId? id) =>
        SvidValidator.Validate(leaf, null, [_root], "example.org", Now, out id);

    private X509Certificate2 Leaf(
        string[]? uris = null,
        bool isCa = false,
        X509KeyUsageFlags? keyUsage = X509KeyUsageFlags.DigitalSignature,
        DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null,
        X509Certificate2? issuer = null,
        byte[]? basicConstraintsDer = null,
        byte[]? keyUsageDer = null)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("O=test", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(basicConstraintsDer is null
            ? new X509BasicConstraintsExtension(isCa, false, 0, true)
            : new X509Extension("2.5.29.19", basicConstraintsDer, true));
        if (keyUsageDer is not null)
        {
            request.CertificateExtensions.Add(new X509Extension("2.5.29.15", keyUsageDer, true));
        }
        else if (keyUsage is { } usage)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        }

        uris ??= ["spiffe://example.org/ns/default/sa/web"];
        if (uris.Length > 0)
        {
            // Written by hand: SubjectAlternativeNameBuilder would normalise malformed URIs.
            var writer = new AsnWriter(AsnEncodingRules.DER);
            using (writer.PushSequence())
            {
                foreach (string uri in uris)
                {
                    writer.WriteCharacterString(UniversalTagNumber.IA5String, uri, new Asn1Tag(TagClass.ContextSpecific, 6));
                }
            }

            request.CertificateExtensions.Add(new X509Extension("2.5.29.17", writer.Encode(), false));
        }

        return request.Create(issuer ?? _root, notBefore ?? Now.AddMinutes(-5), notAfter ?? Now.AddMinutes(55), RandomNumberGenerator.GetBytes(8).Select((b, i) => i == 0 ? (byte)((b & 0x7F) | 0x40) : b).ToArray());
    }
}
