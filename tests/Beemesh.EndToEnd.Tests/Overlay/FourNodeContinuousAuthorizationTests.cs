using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// Continuous authorization across nodes, on one four-node mesh (the fixture of
/// <see cref="FourNodeMeshTests"/>): a DENY policy applied on node 2 refuses new calls from node 1
/// to node 4 and cuts a live stream between them on both sides, and the call works again once the
/// policy is deleted; kill -9 of node 3's agent closes its workload's stream into node 4 once its
/// route's lease runs out; <c>beemesh node remove n2</c> cuts a stream from node 2 into node 4 and
/// one from node 1 out to node 2, and refuses new calls either way. Every cut time is printed.
/// </summary>
public sealed partial class FourNodeMeshTests
{
    // Port 8080 answers one line per connection; port 8081 streams a line every 100 ms until the
    // connection breaks, then says so on stderr (the end the server side saw).
    private const string StreamingServer =
        "ncat -l -k 8080 -c 'echo hello' & " +
        "ncat -l -k 8081 -c 'trap \"\" PIPE; echo stream-start; while echo tick; do sleep 0.1; done; echo server-stream-ended >&2' & " +
        "while ! ss -ltn | grep -q ':8081 '; do sleep 0.05; done; echo server-ready; wait";

    /// <summary>
    /// A client of TARGET: waits until TARGET:8080 answers, holds one stream from TARGET:8081 and
    /// reports its end, then calls TARGET:8080 every 300 ms and prints each answer (or "nothing").
    /// </summary>
    private static string StreamingClient(string target) =>
        $"until [ \"$(timeout 5 ncat --recv-only {target} 8080 </dev/null 2>/dev/null | head -1)\" = hello ]; do sleep 0.3; done; echo reachable; " +
        $"ncat --recv-only {target} 8081 </dev/null 2>&1 | {{ read first; echo \"stream-open $first\"; n=0; while read l; do n=$((n+1)); done; echo \"stream-ended after $n lines\"; }}; " +
        $"while :; do r=$(timeout 5 ncat --recv-only {target} 8080 </dev/null 2>&1 | head -1); echo \"call: ${{r:-nothing}}\"; sleep 0.3; done";

    [SkippableFact]
    public async Task Policies_node_removal_and_a_dead_agent_cut_live_streams_across_nodes()
    {
        BeemeshEnvironment.RequireReady("ip", "ncat", "ss", "timeout");
        _net = BridgedNamespaces.Create(4);
        var wait = TimeSpan.FromSeconds(60);
        // Each node hands out mesh addresses from the block it claims, so no two workloads share one.
        StartAgent(0, token: null);
        Assert.True(await WaitServingAsync(0), "agent 1 did not start");
        for (int i = 1; i < 4; i++)
        {
            StartAgent(i, await CreateTokenAsync());
            Assert.True(await WaitServingAsync(i), $"agent {i + 1} did not start");
        }

        for (int i = 0; i < 4; i++)
        {
            await WaitForAsync(i, () => Cli("members", "--agent", Dir(i)), text => AliveCount(text) == 4, TimeSpan.FromSeconds(30));
        }

        // The servers: web on node 4, web2 on node 2, web3 on node 3.
        await using var web = BeemeshRun.Start(["--agent", Dir(3), "--name", "web", "--port", "8080/tcp", "--port", "8081/tcp"], StreamingServer, networkNamespace: _net.Names[3]);
        await using var web2 = BeemeshRun.Start(["--agent", Dir(1), "--name", "web2", "--port", "8080/tcp", "--port", "8081/tcp"], StreamingServer, networkNamespace: _net.Names[1]);
        await using var web3 = BeemeshRun.Start(["--agent", Dir(2), "--name", "web3", "--port", "8080/tcp", "--port", "8081/tcp"], StreamingServer, networkNamespace: _net.Names[2]);
        Assert.True(await web.WaitForLineAsync("server-ready", wait), web.Stdout + web.Stderr);
        Assert.True(await web3.WaitForLineAsync("server-ready", wait), web3.Stdout + web3.Stderr);
        Assert.True(await web2.WaitForLineAsync("server-ready", wait), web2.Stdout + web2.Stderr);

        // The clients, each holding a stream: client on node 1 → web (node 4); w3 on node 3 → web;
        // c1 on node 2 → web, and c1 on node 1 → web2 (node 2): the same identity on two nodes, so
        // only the issuer of its SVID tells node 4 which c1 came from a removed node; c3 on node 1 → web3.
        await using var client = BeemeshRun.Start(["--agent", Dir(0), "--name", "client"], StreamingClient("web.default"), networkNamespace: _net.Names[0]);
        await using var fromNode3 = BeemeshRun.Start(["--agent", Dir(2), "--name", "w3"], StreamingClient("web.default"), networkNamespace: _net.Names[2]);
        await using var fromNode2 = BeemeshRun.Start(["--agent", Dir(1), "--name", "c1"], StreamingClient("web.default"), networkNamespace: _net.Names[1]);
        await using var toNode2 = BeemeshRun.Start(["--agent", Dir(0), "--name", "c1"], StreamingClient("web2.default"), networkNamespace: _net.Names[0]);
        await using var toNode3 = BeemeshRun.Start(["--agent", Dir(0), "--name", "c3"], StreamingClient("web3.default"), networkNamespace: _net.Names[0]);
        foreach ((string label, BeemeshRun run) in new[] { ("client", client), ("w3", fromNode3), ("c1 on n2", fromNode2), ("c1", toNode2), ("c3", toNode3) })
        {
            Assert.True(await run.WaitForLineAsync("stream-open stream-start", wait), $"{label} never held its stream: {run.Stdout}\n{run.Stderr}\n--- web ---\n{web.Stderr}");
        }

        // 1. A DENY policy applied on node 2 cuts node 1's stream to node 4 on both sides and refuses new calls.
        string policy = Path.Combine(_root, "deny-client.yaml");
        await File.WriteAllTextAsync(policy, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-client, namespace: default}\nspec:\n  action: DENY\n  rules:\n  - from: [{source: {principals: [\"example.org/ns/default/sa/client\"]}}]\n");
        int serverEndsBefore = CountLines(web.Stderr, "server-stream-ended");
        // Times run from the start of the CLI command (it takes a few hundred ms itself).
        var clock = Stopwatch.StartNew();
        (int code, string text) = await Cli("policy", "apply", "-f", policy, "--agent", Dir(1));
        Assert.True(code == 0, text);
        TimeSpan applied = clock.Elapsed;
        Assert.True(await client.WaitForLineAsync("stream-ended", wait), $"the stream survived the policy: {client.Stdout}\n{client.Stderr}");
        TimeSpan clientCut = clock.Elapsed;
        Assert.True(await web.WaitUntilAsync(r => CountLines(r.Stderr, "server-stream-ended") >= serverEndsBefore + 1, wait), web.Stderr);
        TimeSpan serverCut = clock.Elapsed;
        output.WriteLine($"DENY applied on node 2: stream node 1 -> node 4 cut on the client after {clientCut.TotalMilliseconds:0} ms, on the server after {serverCut.TotalMilliseconds:0} ms (the command itself returned after {applied.TotalMilliseconds:0} ms)");
        // The policy names "client" only: the other streams into node 4 go on.
        Assert.DoesNotContain("stream-ended", fromNode3.Stdout);
        Assert.DoesNotContain("stream-ended", fromNode2.Stdout);
        Assert.True(await client.WaitUntilAsync(r => CountLines(r.Stdout, "call: ") >= 3, wait), client.Stdout);
        Assert.DoesNotContain("call: hello", client.Stdout);

        clock.Restart();
        Assert.Equal(0, (await Cli("policy", "delete", "deny-client", "--namespace", "default", "--agent", Dir(1))).Code);
        Assert.True(await client.WaitForLineAsync("call: hello", wait), $"the call did not come back after the policy was deleted: {client.Stdout}");
        output.WriteLine($"policy deleted on node 2: node 1 reached node 4 again after {clock.Elapsed.TotalMilliseconds:0} ms");

        // 2. kill -9 of node 3's agent: c3's stream into node 3 breaks with the agent's tunnel port;
        // w3's stream out of node 3 into node 4 is cut once w3's route lease ran out there.
        clock.Restart();
        _agents[2].Kill();
        await _agents[2].WaitForExitAsync();
        Assert.True(await toNode3.WaitForLineAsync("stream-ended", wait), $"c3's stream outlived node 3's agent: {toNode3.Stdout}");
        output.WriteLine($"agent of node 3 killed: node 1's stream into node 3 ended after {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(await fromNode3.WaitForLineAsync("stream-ended", TimeSpan.FromSeconds(120)), $"w3's stream outlived its node's agent: {fromNode3.Stdout}\n{web.Stderr}");
        output.WriteLine($"agent of node 3 killed: its workload's stream into node 4 cut after {clock.Elapsed.TotalSeconds:0.0} s (route lease {LeaseSeconds} s)");

        // 3. beemesh node remove n2: c1's stream from node 2 into node 4 and c1's stream from node 1
        // out to node 2 are cut; new calls either way are refused, while node 1's client still gets through.
        clock.Restart();
        (code, text) = await Cli("node", "remove", "n2", "--agent", Dir(0));
        Assert.True(code == 0, text);
        TimeSpan removed = clock.Elapsed;
        Assert.True(await fromNode2.WaitForLineAsync("stream-ended", wait), $"node 2's stream into node 4 outlived the removal: {fromNode2.Stdout}\n{web.Stderr}");
        TimeSpan inCut = clock.Elapsed;
        Assert.True(await toNode2.WaitForLineAsync("stream-ended", wait), $"node 1's stream to node 2 outlived the removal: {toNode2.Stdout}\n{toNode2.Stderr}\n--- node 1's list ---\n{await Admin(0, "GET", "v1/workloads/watch?timeout=0")}\n--- web ---\n{web.Stderr}");
        TimeSpan outCut = clock.Elapsed;
        output.WriteLine($"node 4's sidecar cut by issuer: {web.Stderr.Contains("trigger=node-revoked", StringComparison.Ordinal)}");
        output.WriteLine($"node 2 removed: its stream into node 4 cut after {inCut.TotalMilliseconds:0} ms, node 1's stream out to node 2 after {outCut.TotalMilliseconds:0} ms (the command itself returned after {removed.TotalMilliseconds:0} ms)");
        Assert.True(await fromNode2.WaitUntilAsync(r => CountLines(r.Stdout, "call: ") >= 3, wait), fromNode2.Stdout);
        Assert.True(await toNode2.WaitUntilAsync(r => CountLines(r.Stdout, "call: ") >= 3, wait), toNode2.Stdout);
        Assert.DoesNotContain("call: hello", fromNode2.Stdout);
        Assert.DoesNotContain("call: hello", toNode2.Stdout);
        // The removed node's routes left node 1.
        Assert.Contains("no workload is named", await Admin(0, "GET", "v1/resolve?name=web2.default"));
        int callsBefore = CountLines(client.Stdout, "call: hello");
        Assert.True(await client.WaitUntilAsync(r => CountLines(r.Stdout, "call: hello") > callsBefore, wait), client.Stdout);
    }

    private static int CountLines(string text, string prefix) => text.Split('\n').Count(l => l.StartsWith(prefix, StringComparison.Ordinal));
}
