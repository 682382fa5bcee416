using System.Text.Json;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// Two <c>beemesh run --name api</c> replicas on one node, each answering with its own name: a client's calls to <c>api.default</c>
/// reach both, one connection at a time, and once one replica is gone every new call reaches the other.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class ReplicaBalancingTests(ITestOutputHelper output) : MeshAgentTest
{
    private const int Port = 9300;

    [SkippableFact]
    public async Task Calls_to_a_name_reach_every_replica_and_a_departed_replica_gets_none()
    {
        BeemeshEnvironment.RequireReady("ncat", "ss");
        Skip.If(Agent is null, "the agent could not be started");
        using var admin = AgentAdmin.Client(Agent.Directory);

        BeemeshRun first = BeemeshRun.Start(Agent.Workload("api", $"{Port}/tcp"), Replica("one"));
        try
        {
            await CallBothAsync(admin, first);
        }
        finally
        {
            await first.DisposeAsync();
        }
    }

    // The first replica is disposed here, halfway through (its process tree killed), once only.
    private async Task CallBothAsync(HttpClient admin, BeemeshRun first)
    {
        await using var second = BeemeshRun.Start(Agent!.Workload("api", $"{Port}/tcp"), Replica("two"));
        Assert.True(await first.WaitForLineAsync("ready-", TimeSpan.FromSeconds(30)), first.Stdout + first.Stderr);
        Assert.True(await second.WaitForLineAsync("ready-", TimeSpan.FromSeconds(30)), second.Stdout + second.Stderr);
        const string firstName = "one", secondName = "two";
        Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.WorkloadsChangedAsync(admin, p), async () => await ApiReplicasAsync(admin) == 2, TimeSpan.FromSeconds(10)));

        // One client workload, 20 connections in turn; then it waits for the go-ahead on its standard
        // input (sent once its sidecar routes by the list without the first replica) and calls again.
        await using var client = BeemeshRun.Start(Agent.Workload("client"),
            $"for i in $(seq 20); do timeout 10 ncat --recv-only api.default {Port} < /dev/null; done; echo round-one-done; " +
            "read go; " +
            $"n=0; tries=0; while [ $n -lt 10 ] && [ $tries -lt 15 ]; do tries=$((tries+1)); " +
            $"a=$(timeout 10 ncat --recv-only api.default {Port} < /dev/null); if [ -n \"$a\" ]; then n=$((n+1)); echo \"second-$a\"; fi; done; " +
            "echo \"round-two-done after $tries\"", keepStdin: true);
        Assert.True(await client.WaitForLineAsync("round-one-done", TimeSpan.FromSeconds(120)), client.Stdout + client.Stderr);
        string[] answers = [.. client.Stdout.Split('\n').Where(l => l.StartsWith("answer-from-", StringComparison.Ordinal))];
        int toFirst = answers.Count(a => a == $"answer-from-{firstName}");
        int toSecond = answers.Count(a => a == $"answer-from-{secondName}");
        output.WriteLine($"20 calls: {toFirst} to replica {firstName}, {toSecond} to replica {secondName}");
        Assert.Equal(20, answers.Length);
        Assert.True(toFirst > 0 && toSecond > 0, client.Stdout);
        Assert.Equal(20, toFirst + toSecond);

        // The first replica goes away; once the agent has dropped it, new calls all reach the second.
        first.Kill();
        Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.WorkloadsChangedAsync(admin, p), async () => await ApiReplicasAsync(admin) == 1, TimeSpan.FromSeconds(10)),
            "the departed replica is still registered");
        long list = AgentAdmin.VersionOf(await AgentAdmin.WorkloadsChangedAsync(admin, null));
        Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.ReportsChangedAsync(admin, p), () => AgentAdmin.WorkloadListInForceAsync(admin, list, "client"), TimeSpan.FromSeconds(30)),
            $"the client's sidecar never reported routing by workload list {list} or later");
        await client.SendLineAsync("go");
        Assert.True(await client.WaitForLineAsync("round-two-done", TimeSpan.FromSeconds(120)), client.Stdout + client.Stderr);
        string[] after = [.. client.Stdout.Split('\n').Where(l => l.StartsWith("second-", StringComparison.Ordinal))];
        output.WriteLine(client.Stdout.Split('\n').Last(l => l.StartsWith("round-two-done", StringComparison.Ordinal)));
        Assert.Equal(10, after.Length);
        Assert.All(after, a => Assert.Equal($"second-answer-from-{secondName}", a));
    }

    // Each replica answers with its own name (each workload has its own PID namespace, so pids alone may repeat).
    private static string Replica(string name) =>
        $"ncat -l -k {Port} -c \"echo answer-from-{name}\" & " +
        $"while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo ready-{name}; wait";

    private static async Task<int> ApiReplicasAsync(HttpClient admin)
    {
        using JsonDocument list = JsonDocument.Parse(await admin.GetStringAsync("v1/workloads"));
        JsonElement root = list.RootElement.ValueKind == JsonValueKind.Array ? list.RootElement : list.RootElement.GetProperty("workloads");
        return root.EnumerateArray().Count(w => w.GetProperty("name").GetString() == "api");
    }

}
