using System.Diagnostics;
using System.Globalization;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// A caller whose sidecar stops (SIGSTOP) with a flow open: its kernel still answers TCP, but its
/// HTTP/2 layer answers no PING, so the callee's sidecar closes the tunnel connection within the
/// keep-alive interval plus timeout and resets the flow into its workload.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class TunnelKeepAliveTests(ITestOutputHelper output) : MeshAgentTest
{
    private const int Port = 9210;

    // One second of silence, then one second for the PING's answer: the flow is cut within 2 s.
    private static readonly Dictionary<string, string> KeepAlive = new() { ["BEEMESH_TUNNEL_KEEPALIVE"] = "1,1" };

    [SkippableFact]
    public async Task A_bad_keepalive_value_is_a_usage_error_before_anything_starts()
    {
        BeemeshEnvironment.RequireReady();
        Skip.If(Agent is null, "the agent could not be started");
        BeemeshRunResult result = await BeemeshRun.RunAsync(Agent.Workload("api"), "echo guest-ran", TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["BEEMESH_TUNNEL_KEEPALIVE"] = "fast" });
        output.WriteLine(result.Stderr);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("beemesh run: BEEMESH_TUNNEL_KEEPALIVE=fast: expected INTERVAL[,TIMEOUT] in seconds between 0.1 and 3600 (e.g. 10,10), or off\n", result.Stderr);
        Assert.DoesNotContain("guest-ran", result.Stdout);
    }

    [SkippableFact]
    public async Task A_stopped_callers_flow_is_cut_on_the_server_side_within_the_keepalive_bound()
    {
        BeemeshEnvironment.RequireReady("ncat", "ss");
        Skip.If(Agent is null, "the agent could not be started");
        using var admin = AgentAdmin.Client(Agent.Directory);

        // api writes a tick every 100 ms until its write fails (the flow was reset), then says so on
        // stderr (SIGPIPE ignored, so the failed write ends the loop instead of the shell).
        await using var api = BeemeshRun.Start(Agent.Workload("api", $"{Port}/tcp"),
            $"ncat -l -k {Port} -c 'trap \"\" PIPE; echo hello-from-api; while echo tick; do sleep 0.1; done; echo flow-ended >&2' & " +
            $"while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo api-ready; wait", KeepAlive);
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(20)), api.Stdout + api.Stderr);
        await using var web = BeemeshRun.Start(Agent.Workload("web"), $"ncat --recv-only api.default {Port}; echo stream-ended", KeepAlive);
        Assert.True(await web.WaitForLineAsync("tick", TimeSpan.FromSeconds(30)), web.Stdout + web.Stderr);

        // The caller's whole beemesh run (its stack and sidecar) stops; its guest and kernel go on.
        Signal(web.ProcessId, "STOP");
        var stopped = Stopwatch.StartNew();
        try
        {
            // A cap for a broken build: without a keep-alive the flow would stay forever.
            Assert.True(await api.WaitUntilAsync(r => BeemeshRun.HasLine(r.Stderr, "flow-ended"), TimeSpan.FromSeconds(30)), api.Stderr);
            TimeSpan cut = stopped.Elapsed;
            // How long it took is reported, not asserted (a busy machine stretches it); what is asserted
            // is that the keep-alive cut it (the counters and the log line below).
            output.WriteLine($"api's guest flow reset {cut.TotalMilliseconds:F0} ms after SIGSTOP of the caller's sidecar (keep-alive 1 s + 1 s)");

            Dictionary<string, double> metrics = await AgentAdmin.MetricsAfterReportsAsync(admin,
                m => m.GetValueOrDefault("beemesh_mesh_tunnel_flows_lost_total{workload=\"api.default\",reason=\"keepalive_timeout\"}") >= 1);
            Assert.True(metrics.GetValueOrDefault("beemesh_mesh_tunnel_connections_lost_total{workload=\"api.default\",reason=\"keepalive_timeout\"}") >= 1);
            Assert.True(metrics.GetValueOrDefault("beemesh_mesh_tunnel_flows_lost_total{workload=\"api.default\",reason=\"keepalive_timeout\"}") >= 1);
            Assert.Equal(0, metrics.GetValueOrDefault("beemesh_mesh_tunnel_connections_lost_total{workload=\"api.default\",reason=\"ping_flood\"}"));
            Assert.Contains("closed (keepalive_timeout)", api.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Signal(web.ProcessId, "CONT");
        }
    }

    private static void Signal(int pid, string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }
}
