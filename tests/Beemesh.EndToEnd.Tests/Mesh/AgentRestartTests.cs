using System.Diagnostics;
using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// kill -9 of the agent with a DENY in force: the sidecars keep enforcing it while the agent is
/// down (the denied caller stays out, the allowed one keeps working), and the restarted agent on the
/// same state directory has the policy at its version and the running workloads by name.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class AgentRestartTests(ITestOutputHelper output) : MeshAgentTest
{
    private const int Port = 9100;

    /// <summary>A workload that calls api every 300 ms and prints NAME-in or NAME-out for each try.</summary>
    private BeemeshRun StartCaller(string name) => BeemeshRun.Start(Agent!.Workload(name),
        $"echo {name}-ready; while true; do if timeout 8 ncat --recv-only api.default {Port} 2>/dev/null | head -1 | grep -q hello-from-api; " +
        $"then echo {name}-in; else echo {name}-out; fi; sleep 0.3; done");

    private static int Count(BeemeshRun run, string line) => Regex.Matches(run.Stdout, "^" + Regex.Escape(line) + "$", RegexOptions.Multiline).Count;

    // Checked again at each line the run writes.
    private static Task<bool> WaitForCountAsync(BeemeshRun run, string line, int count, TimeSpan timeout) =>
        run.WaitUntilAsync(r => Count(r, line) >= count, timeout);

    [SkippableFact]
    public async Task A_deny_is_enforced_while_the_agent_is_killed_and_after_it_restarts_and_names_still_resolve()
    {
        BeemeshEnvironment.RequireReady("ncat", "ss");
        Skip.If(Agent is null, "the agent could not be started");
        var wait = TimeSpan.FromSeconds(60);

        await using var api = BeemeshRun.Start(Agent.Workload("api", $"{Port}/tcp"),
            $"ncat -l -k {Port} -c 'echo hello-from-api' & while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo api-ready; wait");
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(20)), api.Stdout + api.Stderr);

        var (code, text) = await Agent.ApplyPolicyAsync("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: deny-evil
              namespace: default
            spec:
              action: DENY
              rules:
              - from:
                - source:
                    principals: ["example.org/ns/default/sa/evil"]
            """);
        output.WriteLine(text);
        Assert.Equal(0, code);

        await using var web = StartCaller("web");
        await using var evil = StartCaller("evil");
        Assert.True(await WaitForCountAsync(web, "web-in", 1, wait), web.Stdout + web.Stderr);
        Assert.True(await WaitForCountAsync(evil, "evil-out", 1, wait), evil.Stdout + evil.Stderr);

        // kill -9: no clean-up, no unregistering.
        await Agent.KillHardAsync();
        var down = Stopwatch.StartNew();
        int webBefore = Count(web, "web-in"), evilBefore = Count(evil, "evil-out");
        Assert.True(await WaitForCountAsync(evil, "evil-out", evilBefore + 3, wait), evil.Stdout + evil.Stderr);
        Assert.True(await WaitForCountAsync(web, "web-in", webBefore + 3, wait), web.Stdout + web.Stderr);
        output.WriteLine($"while the agent was down ({down.ElapsedMilliseconds} ms): web got in {Count(web, "web-in") - webBefore} times, evil was refused {Count(evil, "evil-out") - evilBefore} times");
        Assert.Equal(0, Count(evil, "evil-in"));
        Assert.Contains("agent unreachable", api.Stderr + api.Stdout, StringComparison.Ordinal);

        await Agent.RestartAsync();
        (code, text) = await Agent.CliAsync("policy", "list");
        output.WriteLine(text);
        Assert.Equal(0, code);
        Assert.Matches(@"default\s+deny-evil\s+DENY", text);
        Assert.Contains("policy version 1", text, StringComparison.Ordinal);

        // Running workloads resolve by name on the restarted agent, and a new caller reaches api.
        (code, text) = await Agent.CliAsync("status");
        output.WriteLine(text);
        Assert.Equal(0, code);
        Assert.Contains("spiffe://example.org/ns/default/sa/api", text, StringComparison.Ordinal);
        var probe = await BeemeshRun.RunAsync(Agent.Workload("probe"), "timeout 20 ncat --recv-only api.default 9100 | head -1", wait);
        output.WriteLine(probe.ToString());
        Assert.Contains("hello-from-api", probe.Stdout, StringComparison.Ordinal);

        evilBefore = Count(evil, "evil-out");
        webBefore = Count(web, "web-in");
        Assert.True(await WaitForCountAsync(evil, "evil-out", evilBefore + 3, wait), evil.Stdout + evil.Stderr);
        Assert.True(await WaitForCountAsync(web, "web-in", webBefore + 1, wait), web.Stdout + web.Stderr);
        Assert.Equal(0, Count(evil, "evil-in"));
        // api's sidecar (a server only) says so when its own watch reconnects, on its own retry
        // schedule: the callers' traffic above does not wait for it (CI saw the line come later).
        Assert.True(await api.WaitUntilAsync(r => (r.Stderr + r.Stdout).Contains("agent is back", StringComparison.Ordinal), wait), api.Stdout + api.Stderr);
    }

    [SkippableFact]
    public async Task A_workload_the_restarted_agent_lost_registers_again_through_its_sidecar()
    {
        BeemeshEnvironment.RequireReady("ncat", "ss");
        Skip.If(Agent is null, "the agent could not be started");
        await using var api = BeemeshRun.Start(Agent.Workload("api", $"{Port}/tcp"),
            $"ncat -l -k {Port} -c 'echo hello-from-api' & while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo api-ready; wait");
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(20)), api.Stdout + api.Stderr);

        await Agent.KillHardAsync();
        File.Delete(Path.Combine(Agent.Directory, "state", "workloads.json"));
        await Agent.RestartAsync();

        // The sidecar's next report (every 2 s) is answered 404 and it registers again.
        // Status asked again at each change of the restarted agent's workload list.
        var clock = Stopwatch.StartNew();
        string text = "";
        using (HttpClient admin = AgentAdmin.Client(Agent.Directory))
        {
            await AgentAdmin.UntilAsync(p => AgentAdmin.WorkloadsChangedAsync(admin, p), async () => (text = (await Agent.CliAsync("status")).Output).Contains("sa/api", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        }

        output.WriteLine(text);
        output.WriteLine($"registered again {clock.ElapsedMilliseconds} ms after the restart");
        Assert.Contains("spiffe://example.org/ns/default/sa/api", text, StringComparison.Ordinal);
        Assert.Contains("registering api.default again", api.Stderr, StringComparison.Ordinal);

        var probe = await BeemeshRun.RunAsync(Agent.Workload("probe"), $"timeout 20 ncat --recv-only api.default {Port} | head -1", TimeSpan.FromSeconds(60));
        output.WriteLine(probe.ToString());
        Assert.Contains("hello-from-api", probe.Stdout, StringComparison.Ordinal);
    }
}
