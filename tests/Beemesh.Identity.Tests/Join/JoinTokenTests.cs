using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;

namespace Beemesh.Identity.Tests.Join;

public sealed class JoinTokenTests : IDisposable
{
    private const string Fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private readonly TempDirectory _dir = new();
    private readonly CertificateAuthority _root;

    public JoinTokenTests()
    {
        _root = CertificateAuthority.LoadOrCreate(_dir.File("first"));
    }

    public void Dispose()
    {
        _root.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void CreatedTokenPrintsAndParsesBack()
    {
        JoinToken token = JoinToken.Create(_root.Root);
        string text = token.ToString();
        Assert.Matches("^bmt1\\.[a-z2-7]{8}\\.[a-z2-7]{26}\\.sha256-[0-9a-f]{64}$", text);
        Assert.Equal(token, JoinToken.Parse(text));
        Assert.Equal(token, JoinToken.Parse("  " + text + "\n"));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(_root.Root.RawData)), token.RootFingerprint);
    }

    [Fact]
    public void TokensDifferInIdAndSecret()
    {
        var ids = new HashSet<string>();
        var secrets = new HashSet<string>();
        for (int i = 0; i < 200; i++)
        {
            JoinToken token = JoinToken.Create(_root.Root);
            Assert.True(ids.Add(token.Id));
            Assert.True(secrets.Add(token.Secret));
        }
    }

    [Theory]
    [InlineData("", JoinTokenError.Empty)]
    [InlineData("   ", JoinTokenError.Empty)]
    [InlineData("bmt2.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-" + Fingerprint, JoinTokenError.UnknownFormat)]
    [InlineData("abcdef.0123456789abcdef", JoinTokenError.UnknownFormat)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz", JoinTokenError.WrongFieldCount)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-" + Fingerprint + ".x", JoinTokenError.WrongFieldCount)]
    [InlineData("bmt1.abcdefg.abcdefghijklmnopqrstuvwxyz.sha256-" + Fingerprint, JoinTokenError.BadId)]
    [InlineData("bmt1.ABCDEFGH.abcdefghijklmnopqrstuvwxyz.sha256-" + Fingerprint, JoinTokenError.BadId)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxy1.sha256-" + Fingerprint, JoinTokenError.BadSecret)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyza.sha256-" + Fingerprint, JoinTokenError.BadSecret)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha1-" + Fingerprint, JoinTokenError.BadFingerprint)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-" + "0123", JoinTokenError.BadFingerprint)]
    [InlineData("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-" + "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", JoinTokenError.BadFingerprint)]
    public void MalformedTokensGetASpecificError(string text, JoinTokenError expected)
    {
        Assert.False(JoinToken.TryParse(text, out JoinToken? token, out JoinTokenError error));
        Assert.Null(token);
        Assert.Equal(expected, error);
        FormatException e = Assert.Throws<FormatException>(() => JoinToken.Parse(text));
        Assert.Equal(JoinToken.Describe(expected), e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void VerifierIsDerivedFromTheSecretAndDoesNotContainIt()
    {
        JoinToken token = JoinToken.Parse("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxyz.sha256-" + Fingerprint);
        JoinToken other = JoinToken.Parse("bmt1.abcdefgh.abcdefghijklmnopqrstuvwxy2.sha256-" + Fingerprint);
        Assert.Equal(32, token.Verifier().Length);
        Assert.Equal(token.Verifier(), token.Verifier());
        Assert.NotEqual(token.Verifier(), other.Verifier());
    }

    [Fact]
    public void ProofBindsEveryTranscriptField()
    {
        byte[] verifier = JoinToken.Create(_root.Root).Verifier();
        byte[][] fields = [[1], [2], [3], [4], [5]];
        byte[] baseline = JoinProof.Transcript("id", fields[0], fields[1], "node", fields[2], fields[3]);
        byte[] proof = JoinProof.Compute(verifier, baseline);
        Assert.True(JoinProof.Verify(verifier, baseline, proof));
        Assert.False(JoinProof.Verify(verifier, JoinProof.Transcript("ie", fields[0], fields[1], "node", fields[2], fields[3]), proof));
        Assert.False(JoinProof.Verify(verifier, JoinProof.Transcript("id", fields[4], fields[1], "node", fields[2], fields[3]), proof));
        Assert.False(JoinProof.Verify(verifier, JoinProof.Transcript("id", fields[0], fields[4], "node", fields[2], fields[3]), proof));
        Assert.False(JoinProof.Verify(verifier, JoinProof.Transcript("id", fields[0], fields[1], "nodf", fields[2], fields[3]), proof));
        Assert.False(JoinProof.Verify(verifier, JoinProof.Transcript("id", fields[0], fields[1], "node", fields[4], fields[3]), proof));
        Assert.False(JoinProof.Verify(verifier, JoinProof.Transcript("id", fields[0], fields[1], "node", fields[2], fields[4]), proof));
        Assert.False(JoinProof.Verify(verifier, baseline, proof.AsSpan(1)));
        // Length prefixes: moving a byte between adjacent fields changes the transcript.
        Assert.NotEqual(JoinProof.Transcript("ab", [1], [1], "c", [1], [1]), JoinProof.Transcript("a", [1], [1], "bc", [1], [1]));
    }
}
