using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// A strong state store whose replicas run on three nodes (the fixture of
/// <see cref="FourNodeMeshTests"/>: agents in namespaces of their own on one bridge) forms one Raft
/// group: replica <c>kv</c> on node 1 bootstraps it, those on nodes 2 and 3 join it through the
/// nodes' tunnel ports. A write acknowledged on one node is read on another (reads go through the
/// leader, so they are linearizable: never older than an acknowledged write), an ETag check made on
/// one node sees a write made on another, and after kill -9 of the leader the two others elect a new
/// one and go on writing and reading.
/// </summary>
public sealed partial class FourNodeMeshTests
{
    /// <summary>
    /// A workload's script: runs each request whose number the test writes on its standard input
    /// (<c>req-N</c> in <paramref name="directory"/>, a shell snippet with <c>$api</c> the store's URL),
    /// leaves its output in <c>out-N</c> and then prints <c>answered N</c>.
    /// </summary>
    private static string RequestRunner(string directory) => $$"""
        api=http://127.0.0.1:$DAPR_HTTP_PORT/v1.0/state/statestore
        echo ready
        while IFS= read -r n; do
          . {{directory}}/req-$n > {{directory}}/out-$n 2>&1
          echo "answered $n"
        done
        """;

    [SkippableFact]
    public async Task A_strong_store_is_one_raft_group_across_three_nodes_and_survives_the_leaders_kill()
    {
        BeemeshEnvironment.RequireReady("ip", "curl");
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
        using var files = new GuestFiles();
        var replicas = new Dictionary<string, (BeemeshRun Run, Requests Requests)>();
        try
        {
            // Node 1's replica bootstraps the group: no other replica of kv runs anywhere.
            replicas["n1"] = StartStrongReplica(0, files);
            Assert.Equal("204", await replicas["n1"].Requests.UntilAsync(Save("first", "hello-n1"), "204", wait));

            // Each later replica starts once its node's agent holds the routes of those before it, as an
            // orchestrator starting them one at a time would: it then joins their group instead of
            // bootstrapping one of its own (README, strong stores across nodes).
            await WaitForRoutesAsync(1, ["n1"], wait);
            var clock = Stopwatch.StartNew();
            replicas["n2"] = StartStrongReplica(1, files);
            string read = await replicas["n2"].Requests.UntilAsync(Get("first"), "\"hello-n1\"", wait);
            output.WriteLine($"node 2's replica read node 1's write {clock.Elapsed.TotalMilliseconds:0} ms after it was started");
            Assert.Equal("\"hello-n1\"", read);

            // A write acknowledged on node 2 is read on node 1, and back.
            Assert.Equal("204", await replicas["n2"].Requests.AskAsync(Save("k", "from-n2"), wait));
            Assert.Equal("\"from-n2\"", await replicas["n1"].Requests.AskAsync(Get("k"), wait));
            Assert.Equal("204", await replicas["n1"].Requests.AskAsync(Save("k", "from-n1"), wait));
            Assert.Equal("\"from-n1\"", await replicas["n2"].Requests.AskAsync(Get("k"), wait));

            // A compare-and-set on node 1 with the ETag it read loses to a write made on node 2 since.
            string etag = await replicas["n1"].Requests.AskAsync(GetETag("k"), wait);
            Assert.Matches("^[0-9]+$", etag);
            Assert.Equal("204", await replicas["n2"].Requests.AskAsync(Save("k", "again-from-n2"), wait));
            Assert.Equal("409", await replicas["n1"].Requests.AskAsync(SaveIfMatch("k", "stale", etag), wait));
            Assert.Equal("\"again-from-n2\"", await replicas["n1"].Requests.AskAsync(Get("k"), wait));

            await WaitForRoutesAsync(2, ["n1", "n2"], wait);
            replicas["n3"] = StartStrongReplica(2, files);
            Assert.Equal("\"again-from-n2\"", await replicas["n3"].Requests.UntilAsync(Get("k"), "\"again-from-n2\"", wait));

            // The group is one: whichever replica leads, the other two are its followers; after kill -9 of
            // the leader the two left are a majority of three, elect one of themselves and go on.
            string leader = await WaitForLeaderAsync(replicas, wait);
            output.WriteLine($"replica on {leader} leads; killing it");
            (BeemeshRun killed, _) = replicas[leader];
            killed.Kill();
            string[] left = [.. replicas.Keys.Where(k => k != leader).Order(StringComparer.Ordinal)];
            var failover = Stopwatch.StartNew();
            Assert.Equal("204", await replicas[left[0]].Requests.UntilAsync(Save("after", "leader-killed"), "204", wait));
            output.WriteLine($"first write acknowledged {failover.Elapsed.TotalMilliseconds:0} ms after the leader's kill");
            Assert.Equal("\"leader-killed\"", await replicas[left[1]].Requests.AskAsync(Get("after"), wait));
            Assert.Equal("204", await replicas[left[1]].Requests.AskAsync(Save("after", "second"), wait));
            Assert.Equal("\"second\"", await replicas[left[0]].Requests.AskAsync(Get("after"), wait));
            Assert.Equal("\"again-from-n2\"", await replicas[left[1]].Requests.AskAsync(Get("k"), wait));
            string newLeader = await WaitForLeaderAsync(replicas.Where(r => r.Key != leader).ToDictionary(), wait);
            Assert.NotEqual(leader, newLeader);

            // The Raft and forwarded connections crossed the nodes' tunnel ports.
            using HttpClient admin = AgentAdmin.Client(Dir(0));
            (_, Dictionary<string, double> node1) = await AgentAdmin.MetricsAsync(admin, since: null);
            Assert.True(node1.GetValueOrDefault("beemesh_agent_tunnel_connections_total{reason=\"routed\"}") >= 1, "nothing reached node 1's tunnel port");
        }
        finally
        {
            foreach (var (node, (run, _)) in replicas)
            {
                output.WriteLine($"--- replica on {node} ---\n{run.Stdout}{run.Stderr}");
                await run.DisposeAsync();
            }
        }
    }

    private (BeemeshRun Run, Requests Requests) StartStrongReplica(int node, GuestFiles files)
    {
        string directory = Path.Combine(files.Directory, $"n{node + 1}");
        Directory.CreateDirectory(directory);
        var run = BeemeshRun.Start(["--agent", Dir(node), "--name", "kv", "--state", "statestore=strong"], RequestRunner(directory), networkNamespace: _net!.Names[node], keepStdin: true);
        return (run, new Requests(directory, run));
    }

    /// <summary>Waits until node <paramref name="index"/>'s agent resolves kv on every node of <paramref name="nodes"/>.</summary>
    private async Task WaitForRoutesAsync(int index, string[] nodes, TimeSpan wait)
    {
        string resolved = await WaitForAsync(index, () => Admin(index, "GET", "v1/resolve?name=kv.default"),
            text => nodes.All(n => text.Contains($"\"node\":\"{n}\"", StringComparison.Ordinal)), wait);
        Assert.True(nodes.All(n => resolved.Contains($"\"node\":\"{n}\"", StringComparison.Ordinal)), $"node {index + 1} never resolved kv on {string.Join(", ", nodes)}: {resolved}");
    }

    /// <summary>The replica that said last (highest term) that it leads.</summary>
    private static async Task<string> WaitForLeaderAsync(Dictionary<string, (BeemeshRun Run, Requests Requests)> replicas, TimeSpan wait)
    {
        // Each replica's run is checked again at each line it writes; the first to say it leads ends the wait.
        var waits = replicas.Values.Select(r => r.Run.WaitUntilAsync(run => LeadsLine().IsMatch(run.Stderr), wait)).ToList();
        while (waits.Count > 0)
        {
            Task<bool> done = await Task.WhenAny(waits);
            if (await done)
            {
                break;
            }

            waits.Remove(done);
        }

        var terms = replicas.Select(r => (r.Key, Term: LeadsLine().Matches(r.Value.Run.Stderr).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max())).ToList();
        var best = terms.MaxBy(t => t.Term);
        Assert.True(best.Term >= 0, "no replica said it leads");
        return best.Key;
    }

    private static string Save(string key, string value) =>
        "curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '[{\"key\":\"" + key + "\",\"value\":\"" + value + "\"}]' $api";

    private static string SaveIfMatch(string key, string value, string etag) =>
        "curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '[{\"key\":\"" + key + "\",\"value\":\"" + value
        + "\",\"etag\":\"" + etag + "\",\"options\":{\"concurrency\":\"first-write\"}}]' $api";

    private static string Get(string key) => $"curl -s $api/{key}";

    private static string GetETag(string key) => $"curl -s -D - -o /dev/null $api/{key} | tr -d '\\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p'";

    [GeneratedRegex(@"strong store statestore: replica \S+ leads \(term ([0-9]+)\)")]
    private static partial Regex LeadsLine();

    /// <summary>Requests to a replica's <see cref="RequestRunner"/>: one at a time, each answered in its <c>out-N</c> file.</summary>
    private sealed class Requests(string directory, BeemeshRun run)
    {
        private int _next;

        /// <summary>Runs <paramref name="script"/> in the workload and returns its output, trimmed.</summary>
        public async Task<string> AskAsync(string script, TimeSpan timeout)
        {
            int n = _next++;
            await File.WriteAllTextAsync(Path.Combine(directory, $"req-{n}"), script + "\n");
            await run.SendLineAsync(n.ToString(CultureInfo.InvariantCulture));
            Assert.True(
                await run.WaitUntilAsync(r => r.Stdout.Contains($"answered {n}\n", StringComparison.Ordinal), timeout),
                $"request {n} ({script}) not answered within {timeout.TotalSeconds:0} s\n{run.Stdout}{run.Stderr}");
            return (await File.ReadAllTextAsync(Path.Combine(directory, $"out-{n}"))).Trim();
        }

        /// <summary>
        /// Runs <paramref name="script"/> again until it prints <paramref name="want"/> (or the time is up);
        /// returns the last output. Each try waits for the workload's answer, which paces the tries.
        /// </summary>
        public async Task<string> UntilAsync(string script, string want, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                string got = await AskAsync(script, timeout);
                if (got == want || clock.Elapsed > timeout)
                {
                    return got;
                }
            }
        }
    }
}
