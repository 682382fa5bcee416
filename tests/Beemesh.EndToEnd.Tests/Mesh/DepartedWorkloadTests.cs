using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// A workload whose <c>beemesh run</c> is killed with SIGKILL never unregisters: the agent notices
/// its process is gone, its name stops resolving, and the live flows it had are gone from its peers.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class DepartedWorkloadTests(ITestOutputHelper output) : MeshAgentTest
{
    private const int Port = 9200;

    [SkippableFact]
    public async Task A_killed_workload_stops_resolving_within_a_second_and_its_flows_are_gone()
    {
        BeemeshEnvironment.RequireReady("ncat", "ss");
        Skip.If(Agent is null, "the agent could not be started");
        using var admin = AgentAdmin.Client(Agent.Directory);

        await using var api = BeemeshRun.Start(Agent.Workload("api", $"{Port}/tcp"),
            $"ncat -l -k {Port} -c 'echo hello-from-api; while true; do echo tick; sleep 0.1; done' & " +
            $"while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo api-ready; wait");
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(20)), api.Stdout + api.Stderr);
        await using var web = BeemeshRun.Start(Agent.Workload("web"), $"ncat --recv-only api.default {Port}; echo stream-ended");
        Assert.True(await web.WaitForLineAsync("tick", TimeSpan.FromSeconds(30)), web.Stdout + web.Stderr);

        using JsonDocument record = JsonDocument.Parse(await admin.GetStringAsync("v1/resolve?name=web.default"));
        // The service's one replica: web's registration, with the pid of its beemesh run.
        int pid = Assert.Single(record.RootElement.GetProperty("replicas").EnumerateArray()).GetProperty("pid").GetInt32();
        List<int> workload = Descendants(pid);
        Assert.True(await ApiSeesInboundFromWebAsync(admin, expected: true, TimeSpan.FromSeconds(15)), "api's sidecar never reported web's live flow");

        try
        {
            using (Process run = Process.GetProcessById(pid))
            {
                run.Kill(entireProcessTree: false);
                await run.WaitForExitAsync();
            }

            // Asked again at each change of the agent's workload list.
            var gone = Stopwatch.StartNew();
            Assert.True(
                await AgentAdmin.UntilAsync(p => AgentAdmin.WorkloadsChangedAsync(admin, p), async () => (await admin.GetAsync("v1/resolve?name=web.default")).StatusCode == HttpStatusCode.NotFound, TimeSpan.FromSeconds(5)),
                "web.default still resolves 5 s after its process was killed");

            output.WriteLine($"web.default stopped resolving {gone.ElapsedMilliseconds} ms after kill -9 of its beemesh run");
            Assert.True(gone.Elapsed < TimeSpan.FromSeconds(2), $"took {gone.ElapsedMilliseconds} ms");

            // api's sidecar reports its live inbound flows every 2 s: web's is gone from them.
            Assert.True(await ApiSeesInboundFromWebAsync(admin, expected: false, TimeSpan.FromSeconds(10)), "api still reports a live flow from web");
            Assert.Contains("hello-from-api", (await BeemeshRun.RunAsync(Agent.Workload("probe"), $"timeout 20 ncat --recv-only api.default {Port} | head -1", TimeSpan.FromSeconds(60))).Stdout, StringComparison.Ordinal);
        }
        finally
        {
            // What the killed run started (left behind until the workload dies with its run).
            foreach (int orphan in workload)
            {
                try
                {
                    using Process p = Process.GetProcessById(orphan);
                    p.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                }
            }
        }
    }

    // Read again after each sidecar report the agent receives.
    private static Task<bool> ApiSeesInboundFromWebAsync(HttpClient admin, bool expected, TimeSpan timeout) =>
        AgentAdmin.UntilAsync(p => AgentAdmin.ReportsChangedAsync(admin, p), async () => await ApiSeesInboundFromWebAsync(admin) == expected, timeout);

    private static async Task<bool> ApiSeesInboundFromWebAsync(HttpClient admin)
    {
        using JsonDocument status = JsonDocument.Parse(await admin.GetStringAsync("v1/status"));
        bool seen = false;
        foreach (JsonElement w in status.RootElement.GetProperty("workloads").EnumerateArray())
        {
            if (w.GetProperty("workload").GetProperty("name").GetString() == "api" && w.TryGetProperty("connections", out JsonElement connections))
            {
                seen |= connections.EnumerateArray().Any(c => c.GetProperty("peer").GetString()?.EndsWith("/sa/web", StringComparison.Ordinal) == true);
            }
        }

        return seen;
    }

    private static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
            }
        }

        var found = new List<int>();
        var queue = new Queue<int>([root]);
        while (queue.Count > 0)
        {
            int parent = queue.Dequeue();
            foreach (var (pid, ppid) in parents)
            {
                if (ppid == parent)
                {
                    found.Add(pid);
                    queue.Enqueue(pid);
                }
            }
        }

        return found;
    }
}
