using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Jwt;

namespace Beemesh.Spiffe.Tests.Jwt;

public sealed class JwtSvidValidatorTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly JwtBundle _bundle;

    public JwtSvidValidatorTests()
    {
        _bundle = new JwtBundle(new Dictionary<string, ECDsa> { [JwtBundle.KeyIdOf(_key)] = _key });
    }

    public void Dispose() => _key.Dispose();

    [Fact]
    public void ValidTokenYieldsSubject()
    {
        string token = Token("""{"sub":"spiffe://example.org/web","aud":["db"],"exp":EXP}""");
        Assert.Equal(JwtSvidValidationResult.Valid, Validate(token, "db", out SpiffeId? id));
        Assert.Equal("spiffe://example.org/web", id!.ToString());
    }

    [Fact]
    public void BundleSurvivesJwksRoundTrip()
    {
        Assert.True(JwtBundle.TryParse(_bundle.ToJwks(), out JwtBundle? parsed));
        string token = Token("""{"sub":"spiffe://example.org/web","aud":"db","exp":EXP}""");
        Assert.Equal(JwtSvidValidationResult.Valid, JwtSvidValidator.Validate(token, "db", parsed!, "example.org", Now, out _, out _));
    }

    [Theory]
    [InlineData("""{"sub":"spiffe://example.org/web","aud":["db"],"exp":EXP}""", "cache", JwtSvidValidationResult.AudienceMismatch)]
    [InlineData("""{"sub":"spiffe://example.org/web","aud":["db"],"exp":1}""", "db", JwtSvidValidationResult.Expired)]
    [InlineData("""{"sub":"spiffe://example.org/web","aud":["db"]}""", "db", JwtSvidValidationResult.Expired)]
    [InlineData("""{"sub":"spiffe://other.org/web","aud":["db"],"exp":EXP}""", "db", JwtSvidValidationResult.BadSubject)]
    [InlineData("""{"sub":"web","aud":["db"],"exp":EXP}""", "db", JwtSvidValidationResult.BadSubject)]
    public void RefusesBadClaims(string claims, string audience, JwtSvidValidationResult expected) =>
        Assert.Equal(expected, Validate(Token(claims), audience, out _));

    [Fact]
    public void RefusesTamperedPayload()
    {
        string[] parts = Token("""{"sub":"spiffe://example.org/web","aud":["db"],"exp":EXP}""").Split('.');
        parts[1] = B64("""{"sub":"spiffe://example.org/admin","aud":["db"],"exp":1999999999}""");
        Assert.Equal(JwtSvidValidationResult.BadSignature, Validate(string.Join('.', parts), "db", out _));
    }

    [Fact]
    public void RefusesOtherAlgorithmAndUnknownKey()
    {
        string claims = """{"sub":"spiffe://example.org/web","aud":["db"],"exp":EXP}""";
        Assert.Equal(JwtSvidValidationResult.UnsupportedAlgorithm, Validate(Token(claims, alg: "none"), "db", out _));
        Assert.Equal(JwtSvidValidationResult.UnknownKey, Validate(Token(claims, kid: "nope"), "db", out _));
        Assert.Equal(JwtSvidValidationResult.Malformed, Validate("a.b", "db", out _));
    }

    [Theory]
    [InlineData("header")]
    [InlineData("claims")]
    [InlineData("escaped-surrogate")]
    public void StringsThatAreNotTextAreMalformedNotAnException(string where)
    {
        // Valid JSON structure whose string bytes are not UTF-8 (or escape a lone surrogate): the
        // header is read before the signature is checked, so anyone can send this.
        byte[] badText = where == "escaped-surrogate" ? "\\ud800"u8.ToArray() : [0xFF, 0xFE];
        byte[] header = [.. "{\"alg\":\""u8, .. where == "claims" ? "ES256"u8.ToArray() : badText, .. "\",\"kid\":\""u8, .. Encoding.ASCII.GetBytes(JwtBundle.KeyIdOf(_key)), .. "\"}"u8];
        byte[] claims = [.. "{\"sub\":\""u8, .. where == "claims" ? badText : "spiffe://example.org/web"u8.ToArray(), .. "\",\"aud\":\"db\",\"exp\":1999999999}"u8];
        string signingInput = Base64Url.EncodeToString(header) + "." + Base64Url.EncodeToString(claims);
        string token = signingInput + "." + Base64Url.EncodeToString(_key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256));
        Assert.Equal(JwtSvidValidationResult.Malformed, Validate(token, "db", out SpiffeId? id));
        Assert.Null(id);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { (byte)'\\', (byte)'u', (byte)'d', (byte)'c', (byte)'0', (byte)'0' })]
    public void JwksWithAKeyIdThatIsNotTextIsRefused(byte[] badText)
    {
        byte[] jwks = [.. "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\""u8, .. badText, .. "\",\"x\":\"AA\",\"y\":\"AA\"}]}"u8];
        Assert.False(JwtBundle.TryParse(jwks, out JwtBundle? bundle));
        Assert.Null(bundle);
    }

    private JwtSvidValidationResult Validate(string token, string audience, out SpiffeId? id) =>
        JwtSvidValidator.Validate(token, audience, _bundle, "example.org", Now, out id, out _);

    private string Token(string claims, string alg = "ES256", string? kid = null)
    {
        string header = B64($$"""{"alg":"{{alg}}","kid":"{{kid ?? JwtBundle.KeyIdOf(_key)}}","typ":"JWT"}""");
        string payload = B64(claims.Replace("EXP", Now.AddMinutes(5).ToUnixTimeSeconds().ToString(), StringComparison.Ordinal));
        byte[] signature = _key.SignData(Encoding.ASCII.GetBytes(header + "." + payload), HashAlgorithmName.SHA256);
        return header + "." + payload + "." + Base64Url.EncodeToString(signature);
    }

    private static string B64(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));
}
