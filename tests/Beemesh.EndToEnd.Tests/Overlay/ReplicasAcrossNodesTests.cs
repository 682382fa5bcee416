using System.Diagnostics;
using System.Text.Json;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// Replicas of one name on two nodes (the fixture of <see cref="FourNodeMeshTests"/>, three agents in
/// three namespaces): two <c>beemesh run --name api</c> on node 2 and one on node 3, a caller on node 1.
/// The caller's new connections go round robin over all three replicas, and once one replica on
/// node 2 is killed none goes to it.
/// </summary>
public sealed partial class FourNodeMeshTests
{
    private const int ApiPort = 9300;

    /// <summary>A replica that answers every connection with its own name.</summary>
    private static string NamedReplica(string name) =>
        $"ncat -l -k {ApiPort} -c \"echo answer-from-{name}\" & " +
        $"while ! ss -ltn | grep -q ':{ApiPort} '; do sleep 0.05; done; echo ready-{name}; wait";

    [SkippableFact]
    public async Task Calls_go_round_robin_over_replicas_on_two_nodes_and_none_to_a_killed_one()
    {
        BeemeshEnvironment.RequireReady("ip", "ncat", "ss");
        _net = BridgedNamespaces.Create(3);
        var wait = TimeSpan.FromSeconds(60);
        StartAgent(0, token: null);
        Assert.True(await WaitServingAsync(0), "agent 1 did not start");
        for (int i = 1; i < 3; i++)
        {
            StartAgent(i, await CreateTokenAsync());
            Assert.True(await WaitServingAsync(i), $"agent {i + 1} did not start");
        }

        await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => AliveCount(text) == 3, wait);

        string[] flags(int node) => ["--agent", Dir(node), "--name", "api", "--port", $"{ApiPort}/tcp"];
        await using var b1 = BeemeshRun.Start(flags(1), NamedReplica("b1"), networkNamespace: _net.Names[1]);
        await using var b2 = BeemeshRun.Start(flags(1), NamedReplica("b2"), networkNamespace: _net.Names[1]);
        await using var c1 = BeemeshRun.Start(flags(2), NamedReplica("c1"), networkNamespace: _net.Names[2]);
        foreach (var (run, name) in new[] { (b1, "b1"), (b2, "b2"), (c1, "c1") })
        {
            Assert.True(await run.WaitForLineAsync($"ready-{name}", wait), $"{name}: {run.Stdout}{run.Stderr}");
        }

        // Node 1 knows all three (its resolve answers the whole service); a caller started now gets them in its first list.
        string service = await WaitForAsync(0, () => Admin(0, "GET", "v1/resolve?name=api.default"), text => ReplicaNodes(text).Count == 3, wait);
        output.WriteLine(service);
        Assert.Equal(["n2", "n2", "n3"], ReplicaNodes(service));

        // 30 connections in turn; then, at the go-ahead on its standard input (sent once the caller's sidecar
        // reports routing by node 1's list without the killed replica), 15 more.
        await using var client = BeemeshRun.Start(["--agent", Dir(0), "--name", "client"],
            $"for i in $(seq 30); do timeout 10 ncat --recv-only api.default {ApiPort} < /dev/null; done; echo round-one-done; " +
            "read go; " +
            $"for i in $(seq 15); do a=$(timeout 10 ncat --recv-only api.default {ApiPort} < /dev/null); echo \"second-$a\"; done; echo round-two-done",
            networkNamespace: _net.Names[0], keepStdin: true);
        Assert.True(await client.WaitForLineAsync("round-one-done", TimeSpan.FromSeconds(180)), client.Stdout + client.Stderr);
        string[] answers = [.. client.Stdout.Split('\n').Where(l => l.StartsWith("answer-from-", StringComparison.Ordinal))];
        var counts = new[] { "b1", "b2", "c1" }.ToDictionary(n => n, n => answers.Count(a => a == $"answer-from-{n}"));
        output.WriteLine($"30 calls from node 1: {string.Join(", ", counts.Select(c => $"{c.Key} {c.Value}"))}");
        Assert.Equal(30, answers.Length);
        // Round robin over a list that did not change: each replica exactly every third connection.
        Assert.All(counts, c => Assert.Equal(10, c.Value));

        // b1 is killed; node 2 withdraws its route, and node 1 drops it from the service.
        var clock = Stopwatch.StartNew();
        b1.Kill();
        service = await WaitForAsync(0, () => Admin(0, "GET", "v1/resolve?name=api.default"), text => ReplicaNodes(text).Count == 2, wait);
        output.WriteLine($"killed replica gone from node 1's service after {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(["n2", "n3"], ReplicaNodes(service));
        using HttpClient admin1 = AgentAdmin.Client(Dir(0));
        long list = AgentAdmin.VersionOf(await AgentAdmin.WorkloadsChangedAsync(admin1, null));
        Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.ReportsChangedAsync(admin1, p), () => AgentAdmin.WorkloadListInForceAsync(admin1, list, "client"), wait),
            $"the caller's sidecar never reported routing by node 1's workload list {list} or later");
        await client.SendLineAsync("go");
        Assert.True(await client.WaitForLineAsync("round-two-done", TimeSpan.FromSeconds(180)), client.Stdout + client.Stderr);
        string[] after = [.. client.Stdout.Split('\n').Where(l => l.StartsWith("second-", StringComparison.Ordinal))];
        output.WriteLine($"15 calls after the kill: b2 {after.Count(a => a == "second-answer-from-b2")}, c1 {after.Count(a => a == "second-answer-from-c1")}, b1 {after.Count(a => a == "second-answer-from-b1")}");
        Assert.Equal(15, after.Length);
        Assert.DoesNotContain("second-answer-from-b1", after);
        Assert.All(after, a => Assert.Contains(a, new[] { "second-answer-from-b2", "second-answer-from-c1" }));
        Assert.Contains("second-answer-from-b2", after);
        Assert.Contains("second-answer-from-c1", after);
    }

    // The nodes of the replicas in a /v1/resolve answer, in its order ("-" for this node's own); empty for an error.
    private static List<string> ReplicaNodes(string resolve)
    {
        try
        {
            using JsonDocument service = JsonDocument.Parse(resolve);
            return service.RootElement.TryGetProperty("replicas", out JsonElement replicas)
                ? [.. replicas.EnumerateArray().Select(r => r.TryGetProperty("node", out JsonElement node) ? node.GetString() ?? "-" : "-")]
                : [];
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
