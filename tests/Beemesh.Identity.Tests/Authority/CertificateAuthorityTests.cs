using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Jwt;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Identity.Tests.Authority;

public sealed class CertificateAuthorityTests
{
    [Fact]
    public void RootSurvivesRestartAndKeyFileIsPrivate()
    {
        using var dir = new TempDirectory();
        string thumbprint;
        using (CertificateAuthority first = CertificateAuthority.LoadOrCreate(dir.Path, "example.org"))
        {
            thumbprint = first.Root.Thumbprint;
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.File(CertificateAuthority.KeyFileName)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.File(CertificateAuthority.JwtKeyFileName)));
        Assert.True(File.Exists(dir.File(CertificateAuthority.CertificateFileName)));
        Assert.False(File.Exists(dir.File(CertificateAuthority.KeyFileName + ".tmp")));

        using CertificateAuthority second = CertificateAuthority.LoadOrCreate(dir.Path, "example.org");
        Assert.Equal(thumbprint, second.Root.Thumbprint);

        // An SVID from the restarted CA chains to the root the first instance created.
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 svid = second.IssueX509Svid("spiffe://example.org/web", key);
        using X509Certificate2 firstRoot = X509CertificateLoader.LoadCertificateFromFile(dir.File(CertificateAuthority.CertificateFileName));
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(svid, null, [firstRoot], "example.org", DateTimeOffset.UtcNow, out _));
    }

    [Fact]
    public void StoredRootOfAnotherTrustDomainIsRefused()
    {
        using var dir = new TempDirectory();
        CertificateAuthority.LoadOrCreate(dir.Path, "example.org").Dispose();
        Assert.Throws<InvalidOperationException>(() => CertificateAuthority.LoadOrCreate(dir.Path, "other.org"));
    }

    [Fact]
    public void SvidFollowsTheX509SvidProfile()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(dir.Path, timeProvider: time);
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 svid = ca.IssueX509Svid("spiffe://example.org/ns/default/sa/web", key);

        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(svid, null, ca.Bundle, "example.org", time.GetUtcNow(), out SpiffeId? id));
        Assert.Equal("spiffe://example.org/ns/default/sa/web", id!.ToString());

        var basic = Assert.Single(svid.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.False(basic.CertificateAuthority);
        Assert.True(basic.Critical);
        var usage = Assert.Single(svid.Extensions.OfType<X509KeyUsageExtension>());
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);
        Assert.True(usage.Critical);
        var eku = Assert.Single(svid.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value!).Order());

        Assert.True(svid.NotBefore.ToUniversalTime() < time.GetUtcNow().UtcDateTime, "notBefore is backdated");
        Assert.Equal(time.GetUtcNow().AddHours(1).UtcDateTime, svid.NotAfter.ToUniversalTime(), TimeSpan.FromSeconds(1));
        Assert.Contains(svid.SerialNumber, svid.Subject, StringComparison.OrdinalIgnoreCase);

        using ECDsa key2 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 other = ca.IssueX509Svid("spiffe://example.org/ns/default/sa/web", new CertificateRequest("CN=x", key2, HashAlgorithmName.SHA256).PublicKey);
        Assert.NotEqual(svid.SerialNumber, other.SerialNumber);
    }

    [Fact]
    public void SvidValidityStaysWithinTheRoot()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(dir.Path, timeProvider: time);
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 svid = ca.IssueX509Svid("spiffe://example.org/web", key, TimeSpan.FromDays(100_000));
        Assert.Equal(ca.Root.NotAfter, svid.NotAfter);
    }

    [Theory]
    [InlineData("spiffe://other.org/web")]
    [InlineData("not an id")]
    public void RefusesIdsOutsideTheTrustDomain(string spiffeId)
    {
        using var dir = new TempDirectory();
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(dir.Path);
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Throws<ArgumentException>(() => ca.IssueX509Svid(spiffeId, key));
    }

    [Fact]
    public void JwtSvidValidatesAgainstThePublishedJwks()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(dir.Path, timeProvider: time);
        string token = ca.IssueJwtSvid("spiffe://example.org/web", ["db", "cache"]);
        Assert.True(JwtBundle.TryParse(ca.JwtBundle.ToJwks(), out JwtBundle? bundle));

        Assert.Equal(JwtSvidValidationResult.Valid, JwtSvidValidator.Validate(token, "cache", bundle!, "example.org", time.GetUtcNow(), out SpiffeId? id, out string? claims));
        Assert.Equal("spiffe://example.org/web", id!.ToString());
        Assert.Contains("\"iat\"", claims, StringComparison.Ordinal);
        Assert.Equal(JwtSvidValidationResult.AudienceMismatch, JwtSvidValidator.Validate(token, "web", bundle!, "example.org", time.GetUtcNow(), out _, out _));
        time.Advance(CertificateAuthority.DefaultJwtSvidTtl + TimeSpan.FromSeconds(1));
        Assert.Equal(JwtSvidValidationResult.Expired, JwtSvidValidator.Validate(token, "cache", bundle!, "example.org", time.GetUtcNow(), out _, out _));
    }
}
