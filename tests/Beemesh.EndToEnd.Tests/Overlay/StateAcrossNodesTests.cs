using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// An eventual state store whose replicas run on two nodes (the fixture of
/// <see cref="FourNodeMeshTests"/>, two agents in two namespaces): replica <c>kv</c> on node 1 saves
/// a key through Dapr's HTTP API, replica <c>kv</c> on node 2 reads it through its own sidecar, and
/// back. The replicas find each other through the agents' routes and reach each other through the
/// nodes' tunnel ports; a workload of another name on node 2 gets nothing.
/// </summary>
public sealed partial class FourNodeMeshTests
{
    /// <summary>A workload's script: saves KEY=VALUE, then waits for WANT to appear and prints it, then stays up.</summary>
    private static string SaveThenAwait(string key, string value, string want) => $$"""
        api=http://127.0.0.1:$DAPR_HTTP_PORT/v1.0/state/statestore
        echo "saved=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '[{"key":"{{key}}","value":"{{value}}"}]' $api)"
        while true; do
          v=$(curl -s $api/{{want}})
          if [ -n "$v" ]; then echo "got={{want}}=$v"; break; fi
          sleep 0.1
        done
        sleep 600
        """;

    [SkippableFact]
    public async Task A_write_to_an_eventual_store_on_one_node_is_read_on_another()
    {
        BeemeshEnvironment.RequireReady("ip", "curl");
        _net = BridgedNamespaces.Create(2);
        var wait = TimeSpan.FromSeconds(60);
        StartAgent(0, token: null);
        Assert.True(await WaitServingAsync(0), "agent 1 did not start");
        StartAgent(1, await CreateTokenAsync());
        Assert.True(await WaitServingAsync(1), "agent 2 did not start");
        await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => AliveCount(text) == 2, wait);

        var clock = Stopwatch.StartNew();
        await using var a = BeemeshRun.Start(["--agent", Dir(0), "--name", "kv", "--state", "statestore=eventual"], SaveThenAwait("from-a", "hello-a", "from-b"), networkNamespace: _net.Names[0]);
        await using var b = BeemeshRun.Start(["--agent", Dir(1), "--name", "kv", "--state", "statestore=eventual"], SaveThenAwait("from-b", "hello-b", "from-a"), networkNamespace: _net.Names[1]);
        // Another workload on node 2 with a store of the same name: its own, not kv's.
        await using var other = BeemeshRun.Start(["--agent", Dir(1), "--name", "other", "--state", "statestore=eventual"], SaveThenAwait("mine", "x", "from-a"), networkNamespace: _net.Names[1]);

        Assert.True(await b.WaitForLineAsync("got=from-a=\"hello-a\"", wait), $"node 2 never read node 1's write\n--- a ---\n{a.Stdout}{a.Stderr}\n--- b ---\n{b.Stdout}{b.Stderr}");
        output.WriteLine($"node 1's write read on node 2 {clock.Elapsed.TotalMilliseconds:0} ms after both replicas were started");
        Assert.True(await a.WaitForLineAsync("got=from-b=\"hello-b\"", wait), $"node 1 never read node 2's write\n--- a ---\n{a.Stdout}{a.Stderr}\n--- b ---\n{b.Stdout}{b.Stderr}");
        Assert.Contains("saved=204", a.Stdout);
        Assert.Contains("saved=204", b.Stdout);

        // The replicas went through node 2's tunnel port (routed by name to kv's sidecar).
        using HttpClient admin2 = AgentAdmin.Client(Dir(1));
        (_, Dictionary<string, double> node2) = await AgentAdmin.MetricsAsync(admin2, since: null);
        Assert.True(node2.GetValueOrDefault("beemesh_agent_tunnel_connections_total{reason=\"routed\"}") >= 1, "nothing reached node 2's tunnel port");

        // other.default shares no store with kv: after kv's writes crossed both ways and kv's replica on
        // node 2 ran three more anti-entropy exchanges, other still has only its own key.
        const string kvRounds = "beemesh_state_eventual_digest_rounds_total{workload=\"kv.default\"}";
        const string otherReceived = "beemesh_state_eventual_entries_total{workload=\"other.default\",event=\"received\"}";
        double rounds = node2.GetValueOrDefault(kvRounds);
        node2 = await AgentAdmin.MetricsAfterReportsAsync(admin2, m => m.GetValueOrDefault(kvRounds) >= rounds + 3);
        foreach (var (name, value) in node2.Where(m => m.Key.StartsWith("beemesh_state_eventual", StringComparison.Ordinal)))
        {
            output.WriteLine($"node 2: {name} {value}");
        }

        Assert.True(node2.GetValueOrDefault(kvRounds) >= rounds + 3, $"kv's replica on node 2 ran no more rounds ({rounds} before)");
        Assert.Equal(0, node2.GetValueOrDefault(otherReceived));
        Assert.Contains("saved=204", other.Stdout);
        Assert.DoesNotContain("got=", other.Stdout);
    }
}
