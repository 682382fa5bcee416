using System.Diagnostics;
using Xunit.Abstractions;

namespace Beemesh.Fuzz.Tests;

/// <summary>
/// Every fuzz target without AFL: its committed seeds plus a fixed number of deterministic
/// mutations, in-process. No exception other than the target's documented refusals may escape,
/// and memory stays bounded. The packet target runs in a child process inside a fresh user and
/// network namespace, because flows the guest opens are real sockets.
/// </summary>
public sealed class FuzzReplayTests(ITestOutputHelper output)
{
    private const int Mutations = 5000;
    private const long HeapBound = 64L << 20;
    private const long RssBound = 512L << 20;
    private static readonly string Corpus = Path.Combine(AppContext.BaseDirectory, "corpus");

    [Theory]
    [InlineData("slirp-api")]
    [InlineData("policy-yaml")]
    [InlineData("tunnel-frames")]
    [InlineData("dns")]
    [InlineData("admin-api")]
    [InlineData("workload-api")]
    [InlineData("join-token")]
    [InlineData("gossip-records")]
    [InlineData("state-component")]
    public void TargetSurvivesSeedsAndMutations(string name)
    {
        FuzzTarget target = FuzzTarget.All[name]();
        using var disposable = target as IDisposable;
        List<byte[]> seeds = Replay.Seeds(Corpus, name);
        Assert.True(seeds.Count >= 5, $"{name} has only {seeds.Count} seeds");

        ReplayResult result = Replay.Run(target, seeds, Mutations, seed: 20261207);

        output.WriteLine($"{name} {result}");
        Assert.Empty(result.Findings);
        Assert.Equal(seeds.Count + Mutations, result.Executions);
        Assert.True(result.HeapBytesAfter < HeapBound, $"managed heap {result.HeapBytesAfter} bytes after the run");
    }

    [SkippableFact]
    public async Task PacketTargetSurvivesSeedsAndMutationsInItsOwnNetworkNamespace()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "beemesh-fuzz.dll");
        Skip.IfNot(File.Exists("/usr/bin/unshare"), "unshare (util-linux) is not installed");
        var probe = Process.Start(new ProcessStartInfo("unshare", ["--user", "--map-root-user", "--net", "true"]) { RedirectStandardError = true })!;
        await probe.WaitForExitAsync();
        Skip.If(probe.ExitCode != 0, $"cannot create a user+network namespace here: {await probe.StandardError.ReadToEndAsync()}");

        var psi = new ProcessStartInfo("unshare", ["--user", "--map-root-user", "--net", "dotnet", dll, "replay", "packet", $"{Mutations}", "20261207"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var child = Process.Start(psi)!;
        Task<string> stdout = child.StandardOutput.ReadToEndAsync();
        Task<string> stderr = child.StandardError.ReadToEndAsync();
        await child.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(10));
        string line = (await stdout).Trim();
        output.WriteLine(line);
        output.WriteLine(await stderr);

        Assert.Equal(0, child.ExitCode);
        Dictionary<string, long> fields = line.Split(' ').Skip(1).Select(f => f.Split('=')).ToDictionary(f => f[0], f => long.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, fields["findings"]);
        Assert.Equal(fields["seeds"] + Mutations, fields["executions"]);
        Assert.True(fields["seeds"] >= 10);
        Assert.True(fields["frames_out"] >= fields["seeds"], "the stack answered fewer frames than there are seeds: is it reading them?");
        Assert.True(fields["heap_after"] < HeapBound, $"managed heap {fields["heap_after"]} bytes after the run");
        Assert.True(fields["peak_rss"] < RssBound, $"peak RSS {fields["peak_rss"]} bytes");
    }

    [Theory]
    [InlineData("alias-bomb", "YAML aliases are not supported")]
    [InlineData("alias-bomb-in-spec", "YAML aliases are not supported")]
    [InlineData("deep-nesting", "nesting deeper than")]
    [InlineData("deep-mapping", "nesting deeper than")]
    public void PolicyBombSeedsAreRefusedWithTheirReason(string seed, string reason)
    {
        string yaml = File.ReadAllText(Path.Combine(Corpus, "policy-yaml", seed));
        Assert.False(Beemesh.Authorization.PolicyLoader.Load(yaml, out var policies, out var errors));
        Assert.Empty(policies);
        Assert.Contains(errors, e => e.ToString().Contains(reason, StringComparison.Ordinal));
    }

    // The seeds reach past the first checks of each new target: requests that succeed, tokens that
    // join, records whose signature verifies, and each kind of refusal.
    [Fact]
    public void AdminApiSeedsRegisterApplyAndAreRefusedWithReasons()
    {
        using var target = new AdminApiTarget();
        RunSeeds(target);
        Assert.True(target.Outcomes.GetValueOrDefault("POST_201") >= 3, target.Activity);
        Assert.True(target.Outcomes.GetValueOrDefault("POST_200") >= 1, target.Activity);
        Assert.True(target.Outcomes.GetValueOrDefault("POST_204") >= 1, target.Activity);
        Assert.True(target.Outcomes.GetValueOrDefault("DELETE_200") >= 2, target.Activity);
        foreach (string refusal in new[] { "POST_400", "POST_403", "POST_409", "POST_413", "GET_404", "other_404" })
        {
            Assert.True(target.Outcomes.ContainsKey(refusal), $"no {refusal}: {target.Activity}");
        }
    }

    [Fact]
    public void WorkloadApiSeedsIssueValidateAndRefuse()
    {
        using var target = new WorkloadApiTarget();
        RunSeeds(target);
        Assert.True(target.Outcomes.GetValueOrDefault("ok") >= 5, target.Activity);
        Assert.True(target.Outcomes.GetValueOrDefault("signed_Valid") >= 2, target.Activity);
        foreach (string outcome in new[] { "InvalidArgument", "PermissionDenied", "signed_Expired", "signed_BadSubject", "signed_UnsupportedAlgorithm", "jwks_keys_1", "jwks_refused" })
        {
            Assert.True(target.Outcomes.ContainsKey(outcome), $"no {outcome}: {target.Activity}");
        }
    }

    // AFL++ found JWT-SVID requests naming thousands of audiences whose token took seconds to issue and
    // check. The seeds kept for them (33 audiences; 41 of which 40 empty) must be refused, not issued.
    [Theory]
    [InlineData("many-audiences", 33)]
    [InlineData("many-empty-audiences", 41)]
    public void AudienceBombSeedsAreRefused(string seed, int audiences)
    {
        byte[] input = File.ReadAllBytes(Path.Combine(Corpus, "workload-api", seed));
        Assert.Equal(1, input[0] & 7); // a JWTSVIDRequest
        // Field 1 (audience), length-delimited: tag 0x0a, then a one-byte length for these short audiences.
        int count = 0;
        for (int i = 1; i < input.Length; i += 2 + input[i + 1])
        {
            Assert.Equal(0x0a, input[i]);
            count++;
        }

        Assert.Equal(audiences, count);

        using var target = new WorkloadApiTarget();
        target.Run(input);
        Assert.Equal(1, target.Outcomes.GetValueOrDefault("InvalidArgument"));
        Assert.False(target.Outcomes.ContainsKey("ok"), target.Activity);
    }

    [Fact]
    public void JoinSeedsJoinWithAValidProofAndAreRefusedOtherwise()
    {
        using var target = new JoinTarget();
        RunSeeds(target);
        Assert.Equal(2, target.Outcomes.GetValueOrDefault("joined"));
        foreach (string outcome in new[] { "token_ok", "token_WrongFieldCount", "token_BadFingerprint", "token_UnknownFormat", "BadRequest", "BadName", "NameTaken", "UnknownToken" })
        {
            Assert.True(target.Outcomes.ContainsKey(outcome), $"no {outcome}: {target.Activity}");
        }
    }

    [Fact]
    public void GossipSeedsDeliverVerifiedRecordsAndRefuseForgedOnes()
    {
        using var target = new GossipTarget();
        RunSeeds(target);
        Assert.True(target.Outcomes.GetValueOrDefault("accepted") >= 3, target.Activity);
        foreach (string outcome in new[] { "refused_BadSignature", "refused_ForeignChain", "malformed_UnknownType", "malformed_TrailingBytes", "malformed_UnsupportedVersion", "malformed_BadLength" })
        {
            Assert.True(target.Outcomes.ContainsKey(outcome), $"no {outcome}: {target.Activity}");
        }
    }

    [Fact]
    public void SplitReadsLengthPrefixedFramesAndKeepsTheRest()
    {
        var frames = PacketTarget.Split([0, 2, 0xAA, 0xBB, 0, 1, 0xCC, 0xDD, 0xEE]);
        Assert.Equal(3, frames.Count);
        Assert.Equal([0xAA, 0xBB], frames[0].ToArray());
        Assert.Equal([0xCC], frames[1].ToArray());
        Assert.Equal([0xDD, 0xEE], frames[2].ToArray());
        Assert.Equal([0xFF, 0xFF, 1], PacketTarget.Split([0xFF, 0xFF, 1])[0].ToArray());
    }

    [Fact]
    public void AdminRequestsSplitAtNul()
    {
        Assert.Equal(["GET /a"u8.ToArray(), [], "x"u8.ToArray()], AdminApiTarget.Requests("GET /a\0\0x"u8));
        Assert.Single(AdminApiTarget.Requests([]));
    }

    [Fact]
    public void MutatorIsDeterministic()
    {
        byte[][] corpus = [[1, 2, 3, 4, 5], [9, 8, 7]];
        var a = new Mutator(5);
        var b = new Mutator(5);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(a.Next(corpus), b.Next(corpus));
        }
    }

    private void RunSeeds(FuzzTarget target)
    {
        ReplayResult result = Replay.Run(target, Replay.Seeds(Corpus, target.Name), mutations: 0, seed: 1);
        output.WriteLine($"{target.Name} {result} {target.Activity}");
        Assert.Empty(result.Findings);
    }
}
