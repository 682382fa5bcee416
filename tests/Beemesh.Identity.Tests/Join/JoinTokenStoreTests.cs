using System.Text;
using Beemesh.Identity.Join;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Identity.Tests.Join;

public sealed class JoinTokenStoreTests : IDisposable
{
    private const string Fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private static readonly byte[] Transcript = [1, 2, 3];
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TokenRedeemsOnceAndStaysUsedAcrossInstances()
    {
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        JoinToken token = store.Create();
        Assert.Equal(Fingerprint, token.RootFingerprint);
        byte[] proof = Proof(token);
        Assert.Equal(JoinTokenCheck.Valid, store.Check(token.Id, Transcript, proof));
        Assert.Equal(JoinTokenCheck.Valid, store.Redeem(token.Id, Transcript, proof, "worker-1"));
        Assert.Equal(JoinTokenCheck.AlreadyUsed, store.Redeem(token.Id, Transcript, proof, "worker-2"));

        // A new instance (a restarted agent, or the CLI) reads the same durable state.
        var again = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        Assert.Equal(JoinTokenCheck.AlreadyUsed, again.Check(token.Id, Transcript, proof));
        Assert.Empty(again.ListUsable());
    }

    [Fact]
    public void TokenExpiresAfterItsTtl()
    {
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        JoinToken token = store.Create(TimeSpan.FromMinutes(15));
        _time.Advance(TimeSpan.FromMinutes(14));
        Assert.Equal(JoinTokenCheck.Valid, store.Check(token.Id, Transcript, Proof(token)));
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(JoinTokenCheck.Expired, store.Redeem(token.Id, Transcript, Proof(token), "worker-1"));

        // A day after expiry the token is forgotten.
        _time.Advance(JoinTokenStore.Retention + TimeSpan.FromMinutes(1));
        Assert.Equal(JoinTokenCheck.Unknown, store.Check(token.Id, Transcript, Proof(token)));
    }

    [Fact]
    public void WrongSecretUnknownIdAndDefaultTtl()
    {
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        JoinToken token = store.Create();
        Assert.Equal((_time.GetUtcNow() + TimeSpan.FromMinutes(15)).ToUnixTimeSeconds(), store.ListUsable().Single().Expires.ToUnixTimeSeconds());
        JoinToken forged = JoinToken.Parse($"bmt1.{token.Id}.{new string('a', 26)}.sha256-{Fingerprint}");
        Assert.Equal(JoinTokenCheck.BadSecret, store.Redeem(token.Id, Transcript, Proof(forged), "worker-1"));
        Assert.Equal(JoinTokenCheck.Unknown, store.Check("zzzzzzzz", Transcript, Proof(token)));
        // The bad attempt did not consume the token.
        Assert.Equal(JoinTokenCheck.Valid, store.Redeem(token.Id, Transcript, Proof(token), "worker-1"));
    }

    [Fact]
    public void StoreKeepsNoSecretAndIsPrivate()
    {
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        JoinToken token = store.Create();
        string path = Path.Combine(_dir.Path, "state", "tokens.json");
        string json = File.ReadAllText(path, Encoding.UTF8);
        Assert.Contains(token.Id, json);
        Assert.DoesNotContain(token.Secret, json);
        Assert.DoesNotContain(token.ToString(), json);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void TtlOutsideBoundsIsRefused()
    {
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Create(TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Create(TimeSpan.FromDays(8)));
        Assert.NotNull(JoinTokenStore.CheckTtl(TimeSpan.FromSeconds(-1)));
        Assert.Null(JoinTokenStore.CheckTtl(TimeSpan.FromHours(1)));
    }

    [Fact]
    public void CorruptStoreIsReportedNotSilentlyReset()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, "state"));
        File.WriteAllText(Path.Combine(_dir.Path, "state", "tokens.json"), "{not json");
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => store.Create());
        Assert.Contains("tokens.json", e.Message);
    }

    [Fact]
    public async Task ConcurrentRedemptionsOfOneTokenLetExactlyOneThrough()
    {
        var store = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        JoinToken token = store.Create();
        byte[] proof = Proof(token);
        // Two instances, as two processes would have, racing on the file lock.
        var other = new JoinTokenStore(_dir.Path, Fingerprint, _time);
        JoinTokenCheck[] results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            Task.Run(() => (i % 2 == 0 ? store : other).Redeem(token.Id, Transcript, proof, $"n{i}"))));
        Assert.Equal(1, results.Count(r => r == JoinTokenCheck.Valid));
        Assert.Equal(7, results.Count(r => r == JoinTokenCheck.AlreadyUsed));
    }

    private static byte[] Proof(JoinToken token) => JoinProof.Compute(token.Verifier(), Transcript);
}
