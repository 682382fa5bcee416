using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// Four agents in four network namespaces on one bridge form one mesh: node 1 holds the root, nodes
/// 2-4 join with tokens from <c>beemesh token create</c>. Checked: every node sees all four in
/// <c>beemesh members</c>; a workload registered on node 4 resolves on node 1, marked with its node;
/// a policy applied on node 2 reaches nodes 1 and 4 at the same mesh version; after kill -9 of node
/// 3's agent its route vanishes from node 1 once its lease ran out; after node 4's link was down
/// while the policy changed, it catches up once the link is back; a reused token is refused.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed partial class FourNodeMeshTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int NodePort = 15010;
    private const int LeaseSeconds = 9;
    private readonly List<Process> _agents = [];
    // Per state directory: completes when that agent prints its admin socket (it serves by then).
    private readonly Dictionary<string, (Process Agent, TaskCompletionSource Serving)> _serving = [];
    private string _root = string.Empty;
    private BridgedNamespaces? _net;

    public Task InitializeAsync()
    {
        _root = Directory.CreateTempSubdirectory("bm-ov-e2e-").FullName;
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        foreach (Process agent in _agents)
        {
            try
            {
                if (!agent.HasExited)
                {
                    ProcessTree.Kill(agent);
                    agent.WaitForExit();
                }
            }
            catch (InvalidOperationException)
            {
            }

            agent.Dispose();
        }

        if (File.Exists(WorkloadPidFile))
        {
            foreach (string line in File.ReadAllLines(WorkloadPidFile))
            {
                if (int.TryParse(line, out int pid))
                {
                    try
                    {
                        using Process workload = Process.GetProcessById(pid);
                        workload.Kill();
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                    {
                        // Gone already.
                    }
                }
            }
        }

        _net?.Dispose();
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    [SkippableFact]
    public async Task Four_agents_join_by_token_and_share_members_routes_and_policies()
    {
        BeemeshEnvironment.RequireReady("ip", "curl");
        _net = BridgedNamespaces.Create(4);
        var wait = TimeSpan.FromSeconds(30);

        Process first = StartAgent(0, token: null);
        await WaitServingAsync(0);
        for (int i = 1; i < 4; i++)
        {
            StartAgent(i, await CreateTokenAsync());
            Assert.True(await WaitServingAsync(i), $"agent {i + 1} did not start");
        }

        // Membership: each node holds the node records of all four, all alive.
        for (int i = 0; i < 4; i++)
        {
            string members = await WaitForAsync(i, () => Cli("members", "--agent", Dir(i)), text => AliveCount(text) == 4, wait);
            output.WriteLine(members);
            Assert.Equal(4, AliveCount(members));
        }

        // A workload on node 4 resolves on node 1, as a remote route of n4.
        var propagation = Stopwatch.StartNew();
        Assert.Contains("\"id\"", await RegisterAsync(3, "orders", "shop"));
        string resolved = await WaitForAsync(0, () => Admin(0, "GET", "v1/resolve?name=orders.shop"), text => text.Contains("\"node\":\"n4\"", StringComparison.Ordinal), wait);
        output.WriteLine($"route registered on node 4 resolved on node 1 after {propagation.Elapsed.TotalMilliseconds:0} ms");
        Assert.Contains("\"spiffeId\":\"spiffe://example.org/ns/shop/sa/orders\"", resolved);
        await AssertDistinctMeshBlocksAsync(wait);

        // A policy applied on node 2 reaches nodes 1 and 4 at the same mesh version.
        string policy = Path.Combine(_root, "policy.yaml");
        await File.WriteAllTextAsync(policy, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-evil, namespace: shop}\nspec:\n  action: DENY\n  rules:\n  - from: [{source: {principals: [\"example.org/ns/shop/sa/evil\"]}}]\n");
        (int applyCode, string applied) = await Cli("policy", "apply", "-f", policy, "--agent", Dir(1));
        Assert.True(applyCode == 0, applied);
        string version = PolicyVersion(await WaitForAsync(1, () => Cli("members", "--agent", Dir(1)), text => PolicyVersion(text) != "-", wait));
        foreach (int i in new[] { 0, 3 })
        {
            Assert.Equal(version, PolicyVersion(await WaitForAsync(i, () => Cli("members", "--agent", Dir(i)), text => PolicyVersion(text) == version, wait)));
            Assert.Contains("deny-evil", (await Cli("policy", "list", "--agent", Dir(i))).Output);
        }

        // Node 4's link goes down; once node 4 has noticed (its active view is empty) a policy changes on
        // node 1 and reaches nodes 1-3, and node 4 still holds the old version: nothing can reach it. After
        // the heal node 4 holds the new version (the digest exchange on its new links catches it up).
        _net.SetLink(3, up: false);
        var down = Stopwatch.StartNew();
        string isolated = await WaitForAsync(3, () => Admin(3, "GET", "v1/members"), text => text.Contains("\"active\":[]", StringComparison.Ordinal), TimeSpan.FromSeconds(120));
        Assert.True(isolated.Contains("\"active\":[]", StringComparison.Ordinal), $"node 4 never noticed its link was down: {isolated}");
        output.WriteLine($"node 4 lost all its links {down.Elapsed.TotalSeconds:0.0} s after its link went down");
        string second = Path.Combine(_root, "policy2.yaml");
        await File.WriteAllTextAsync(second, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-mallory, namespace: shop}\nspec:\n  action: DENY\n  rules:\n  - from: [{source: {principals: [\"example.org/ns/shop/sa/mallory\"]}}]\n");
        (applyCode, applied) = await Cli("policy", "apply", "-f", second, "--agent", Dir(0));
        Assert.True(applyCode == 0, applied);
        string healed = PolicyVersion(await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => PolicyVersion(text) != version, wait));
        Assert.NotEqual(version, healed);
        foreach (int i in new[] { 1, 2 })
        {
            Assert.Equal(healed, PolicyVersion(await WaitForAsync(i, () => Cli("members", "--agent", Dir(i)), text => PolicyVersion(text) == healed, wait)));
        }

        Assert.Equal(version, PolicyVersion((await Cli("members", "--agent", Dir(3))).Output));
        Assert.DoesNotContain("deny-mallory", (await Cli("policy", "list", "--agent", Dir(3))).Output);
        _net.SetLink(3, up: true);
        var heal = Stopwatch.StartNew();
        Assert.Equal(healed, PolicyVersion(await WaitForAsync(3, () => Cli("members", "--agent", Dir(3)), text => PolicyVersion(text) == healed, TimeSpan.FromSeconds(120))));
        output.WriteLine($"node 4 caught up with the policy set {heal.Elapsed.TotalSeconds:0.0} s after its link came back");
        Assert.Contains("deny-mallory", (await Cli("policy", "list", "--agent", Dir(3))).Output);
        await WaitForAsync(3, () => Cli("members", "--agent", Dir(3)), text => AliveCount(text) == 4, wait);

        // kill -9 of node 3's agent: its route leaves node 1 once its lease ran out there (seen at the change
        // of node 1's overlay that drops it; how long that takes is printed, and measured in loadtests/).
        Assert.Contains("\"id\"", await RegisterAsync(2, "billing", "shop"));
        await WaitForAsync(0, () => Admin(0, "GET", "v1/resolve?name=billing.shop"), text => text.Contains("\"node\":\"n3\"", StringComparison.Ordinal), wait);
        _agents[2].Kill();
        await _agents[2].WaitForExitAsync();
        var clock = Stopwatch.StartNew();
        string gone = await WaitForAsync(0, () => Admin(0, "GET", "v1/resolve?name=billing.shop"), text => text.Contains("\"error\"", StringComparison.Ordinal), TimeSpan.FromSeconds(120));
        output.WriteLine($"route of the killed node gone from node 1 after {clock.Elapsed.TotalSeconds:0.0} s (lease {LeaseSeconds} s)");
        Assert.Contains("no workload is named", gone);
        Assert.Contains("\"node\":\"n4\"", await Admin(0, "GET", "v1/resolve?name=orders.shop"));

        // A reused token is refused, with one line, and the agent exits non-zero.
        string token = await CreateTokenAsync();
        StartAgent(2, token, name: "n5", dir: Path.Combine(_root, "n5"));
        Assert.True(await WaitServingAsync(2, Path.Combine(_root, "n5")));
        (int code, string text) = await RunAsync(TimeSpan.FromSeconds(20), "ip", "netns", "exec", _net.Names[3], BeemeshEnvironment.BeemeshPath,
            "agent", "--state-dir", Path.Combine(_root, "n6"), "--node-name", "n6", "--join", $"{BridgedNamespaces.Address(0)}:{NodePort}", "--token", token);
        output.WriteLine(text);
        Assert.NotEqual(0, code);
        Assert.Contains($"was already used", text);
        Assert.False(first.HasExited);
    }

    /// <summary>
    /// A <c>beemesh run</c> workload on node 4 serves a line on port 8080; a <c>beemesh run</c> client
    /// on node 1 calls it by name (<c>web.default</c>): its sidecar resolves the remote route and
    /// tunnels through node 4's tunnel port, with mTLS end to end, and gets the line.
    /// </summary>
    [SkippableFact]
    public async Task A_workload_on_node_1_calls_a_workload_on_node_4_by_name()
    {
        BeemeshEnvironment.RequireReady("ip", "ncat", "ss");
        _net = BridgedNamespaces.Create(4);
        StartAgent(0, token: null);
        Assert.True(await WaitServingAsync(0), "agent 1 did not start");
        StartAgent(3, await CreateTokenAsync());
        Assert.True(await WaitServingAsync(3), "agent 4 did not start");
        await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => AliveCount(text) == 2, TimeSpan.FromSeconds(30));

        var served = Stopwatch.StartNew();
        await using var web = BeemeshRun.Start(
            ["--agent", Dir(3), "--name", "web", "--port", "8080/tcp"],
            "ncat -l -k 8080 -c 'echo hello-from-node4' & while ! ss -ltn | grep -q ':8080 '; do sleep 0.05; done; echo web-ready; wait",
            networkNamespace: _net.Names[3]);
        Assert.True(await web.WaitForLineAsync("web-ready", TimeSpan.FromSeconds(30)), web.Stdout + web.Stderr);

        await using var client = BeemeshRun.Start(
            ["--agent", Dir(0), "--name", "client"],
            "echo client-ready; while true; do r=$(timeout 8 ncat --recv-only web.default 8080 2>&1 | head -1); " +
            "echo \"got: $r\"; case \"$r\" in hello-from-node4*) break;; esac; sleep 0.3; done; sleep 600",
            networkNamespace: _net.Names[0]);
        bool reached = await client.WaitForLineAsync("got: hello-from-node4", TimeSpan.FromSeconds(60));
        TimeSpan first = served.Elapsed;
        output.WriteLine(client.Stdout);
        output.WriteLine(client.Stderr);
        Assert.True(reached, $"client never got the page: {client.Stdout}\n{client.Stderr}\n--- web ---\n{web.Stdout}\n{web.Stderr}");
        output.WriteLine($"first successful call from node 1 to web on node 4 {first.TotalMilliseconds:0} ms after the server's start");

        // Node 1 has no web of its own: the name resolved to node 4's route.
        string resolved = await Admin(0, "GET", "v1/resolve?name=web.default");
        output.WriteLine(resolved);
        Assert.Contains("\"node\":\"n4\"", resolved);
        Assert.Contains($"\"tunnelEndpoint\":\"{BridgedNamespaces.Address(3)}:15008\"", resolved);
    }

    private string Dir(int index) => Path.Combine(_root, $"n{index + 1}");

    private Process StartAgent(int index, string? token, string? name = null, string? dir = null)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        var args = new List<string>
        {
            "netns", "exec", _net!.Names[index], BeemeshEnvironment.BeemeshPath, "agent",
            "--state-dir", dir ?? Dir(index), "--node-name", name ?? $"n{index + 1}", "--route-lease", $"{LeaseSeconds}s",
        };
        if (name is null)
        {
            args.AddRange(["--listen", $"{BridgedNamespaces.Address(index)}:{NodePort}"]);
        }

        if (token is not null)
        {
            args.AddRange(["--join", $"{BridgedNamespaces.Address(0)}:{NodePort}", "--token", token]);
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = Process.Start(psi)!;
        string label = name ?? $"n{index + 1}";
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("admin API:", StringComparison.Ordinal) == true)
            {
                serving.TrySetResult();
            }

            Log(label, e.Data);
        };
        _serving[dir ?? Dir(index)] = (process, serving);
        process.ErrorDataReceived += (_, e) => Log(label, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _agents.Add(process);
        return process;
    }

    private void Log(string label, string? line)
    {
        if (line is not null)
        {
            try
            {
                output.WriteLine($"[{label}] {line}");
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    /// <summary>Waits until the agent of <paramref name="dir"/> (default node <paramref name="index"/>'s) says its admin socket serves; false when it exited first (60 s at most: a cap for a broken build).</summary>
    private async Task<bool> WaitServingAsync(int index, string? dir = null)
    {
        (Process agent, TaskCompletionSource serving) = _serving[dir ?? Dir(index)];
        try
        {
            await Task.WhenAny(serving.Task, agent.WaitForExitAsync()).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
        }

        return serving.Task.IsCompleted;
    }

    private async Task<string> CreateTokenAsync()
    {
        (int code, string text) = await Cli("token", "create", "--state-dir", Dir(0));
        Assert.True(code == 0, text);
        return text.Split('\n')[0].Trim();
    }

    /// <summary>
    /// Registers a workload process on node <paramref name="index"/>. The agent registers only the caller
    /// or its descendants, so a shell starts the workload (a sleep), then becomes curl, its parent.
    /// </summary>
    private async Task<string> RegisterAsync(int index, string name, string ns)
    {
        string body = $"{{\"name\":\"{name}\",\"namespace\":\"{ns}\",\"pid\":@PID@,\"ports\":[{{\"port\":8080,\"protocol\":\"http\"}}],\"tunnelEndpoint\":\"127.0.0.1:15008\"}}";
        const string Script = """
            sleep 600 </dev/null >/dev/null 2>&1 & p=$!; echo "$p" >> "$1"
            exec curl -s --unix-socket "$2" -X POST http://agent/v1/workloads -H 'Content-Type: application/json' --data "$(printf '%s' "$3" | sed "s/@PID@/$p/")"
            """;
        return (await RunAsync(TimeSpan.FromSeconds(10), "sh", "-c", Script, "sh", WorkloadPidFile, Path.Combine(Dir(index), "admin.sock"), body)).Output;
    }

    private string WorkloadPidFile => Path.Combine(_root, "workload-pids");

    private async Task<string> Admin(int index, string method, string path, string? body = null)
    {
        var args = new List<string> { "-s", "--unix-socket", Path.Combine(Dir(index), "admin.sock"), "-X", method, $"http://agent/{path}" };
        if (body is not null)
        {
            args.AddRange(["-H", "Content-Type: application/json", "--data", body]);
        }

        return (await RunAsync(TimeSpan.FromSeconds(10), "curl", [.. args])).Output;
    }

    private static Task<(int Code, string Output)> Cli(params string[] args) => RunAsync(TimeSpan.FromSeconds(20), BeemeshEnvironment.BeemeshPath, args);

    private static int AliveCount(string members) => AliveLine().Matches(members).Count;

    private static string PolicyVersion(string members) => PolicyLine().Match(members) is { Success: true } m ? m.Groups[1].Value : "-";

    /// <summary>
    /// Probes until <paramref name="done"/> holds, probing again at each change of node
    /// <paramref name="node"/>'s overlay (views, records, suspicions, counters: a members watch), never
    /// on a timer. <paramref name="cap"/> only keeps a broken build from hanging; it measures nothing.
    /// </summary>
    private async Task<string> WaitForAsync(int node, Func<Task<(int Code, string Output)>> probe, Func<string, bool> done, TimeSpan cap) =>
        await WaitForAsync(node, async () => (await probe()).Output, done, cap);

    private async Task<string> WaitForAsync(int node, Func<Task<string>> probe, Func<string, bool> done, TimeSpan cap)
    {
        var clock = Stopwatch.StartNew();
        long seen = await OverlayChangeAsync(node, since: -1); // read before the probe, so no change in between is missed
        string last = await probe();
        while (!done(last) && clock.Elapsed < cap)
        {
            seen = await OverlayChangeAsync(node, seen);
            last = await probe();
        }

        return last;
    }

    /// <summary>Waits (a long poll of at most 5 s) for node <paramref name="node"/>'s overlay to change past <paramref name="since"/>; returns its change version.</summary>
    private async Task<long> OverlayChangeAsync(int node, long since)
    {
        string text = await Admin(node, "GET", $"v1/members/watch?since={since}&timeout=5");
        Match version = ChangeVersionField().Match(text);
        Assert.True(version.Success, $"the members watch of node {node + 1} did not answer: {text}");
        return long.Parse(version.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<(int Code, string Output)> RunAsync(TimeSpan timeout, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            ProcessTree.Kill(p);
            await p.WaitForExitAsync();
        }

        var text = new StringBuilder(await stdout).Append(await stderr);
        return (p.ExitCode, text.ToString());
    }

    // Mesh address blocks: the four nodes claim four distinct blocks (as node 1 sees them), and the
    // route of orders.shop (node 4) that node 1 resolves lies in node 4's block.
    private async Task AssertDistinctMeshBlocksAsync(TimeSpan wait)
    {
        static Dictionary<string, string> Blocks(string members) =>
            NodeBlockLine().Matches(members).Where(m => m.Groups[2].Value != "-").ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        string members = await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => Blocks(text).Values.Distinct().Count() == 4, wait);
        output.WriteLine(members);
        Dictionary<string, string> blocks = Blocks(members);
        Assert.Equal(4, blocks.Values.Distinct().Count());
        var n4 = System.Net.IPNetwork.Parse(blocks["n4"]);
        string route = await WaitForAsync(0, () => Admin(0, "GET", "v1/resolve?name=orders.shop"),
            text => MeshAddressField().Match(text) is { Success: true } m && n4.Contains(System.Net.IPAddress.Parse(m.Groups[1].Value)), wait);
        Assert.True(MeshAddressField().Match(route) is { Success: true } a && n4.Contains(System.Net.IPAddress.Parse(a.Groups[1].Value)), $"{route} is not in n4's block {n4}");
    }

    [GeneratedRegex(@"^\s+(n\d+)\s+\S+\s+\S+\s+block (\S+)", RegexOptions.Multiline)]
    private static partial Regex NodeBlockLine();

    [GeneratedRegex("\"meshAddress\":\"([0-9.]+)\"")]
    private static partial Regex MeshAddressField();

    [GeneratedRegex("\"changeVersion\":(\\d+)")]
    private static partial Regex ChangeVersionField();

    [GeneratedRegex(@"^\s+n\d+\s+alive\s", RegexOptions.Multiline)]
    private static partial Regex AliveLine();

    [GeneratedRegex(@"^policies (\S+)", RegexOptions.Multiline)]
    private static partial Regex PolicyLine();
}
