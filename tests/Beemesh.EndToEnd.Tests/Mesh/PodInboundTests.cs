using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// Calls into a pod: the app and its <c>beemesh sidecar</c> share a fresh network namespace behind
/// our slirp4netns, as in a rootless podman pod, so the sidecar's tunnel endpoint is on a loopback
/// nobody on the node can dial. The agent sees the sidecar is in another network namespace, names its
/// own tunnel port in the pod's record, and hands each connection to the sidecar as a descriptor over
/// the channel the sidecar opened through the agent directory. A <c>beemesh run</c> workload calls
/// the pod's app by name and gets its page; a DENY policy for the caller refuses it (403).
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class PodInboundTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Port = 8096;
    private readonly string _www = Directory.CreateTempSubdirectory("beemesh-podwww-").FullName;
    private readonly string _netns = $"bm-pod-{Guid.NewGuid().ToString("N")[..8]}";
    private readonly BeemeshProcesses _processes = new(output);
    private MeshAgentProcess? _agent;
    private bool _netnsMade;

    public async Task InitializeAsync() => _agent = await MeshAgentProcess.StartAsync();

    public async Task DisposeAsync()
    {
        _processes.Dispose();
        if (_netnsMade)
        {
            Run("ip", "netns", "delete", _netns);
        }

        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }

        Directory.Delete(_www, recursive: true);
    }

    [SkippableFact]
    public async Task A_mesh_workload_calls_the_pods_app_by_name_through_the_agents_tunnel_port_and_policy_applies()
    {
        BeemeshEnvironment.RequireReady("busybox", "curl", "ss", "ip");
        Skip.If(_agent is null, "the agent could not be started (needs out/bin and root)");
        await File.WriteAllTextAsync(Path.Combine(_www, "index.html"), "pod-page\n");

        // The pod: a fresh network namespace with loopback up and our slirp4netns on tap0.
        Assert.Equal(0, Run("ip", "netns", "add", _netns).ExitCode);
        _netnsMade = true;
        Assert.Equal(0, Run("ip", "netns", "exec", _netns, "ip", "link", "set", "lo", "up").ExitCode);
        Process slirp = _processes.StartProgram("sh", "-c", "exec \"$0\" --configure --ready-fd=3 --netns-type=path \"$1\" tap0 3>&1 1>&2",
            Path.Combine(BeemeshEnvironment.BinDirectory!, "beemesh-slirp"), $"/run/netns/{_netns}");
        Assert.True(await _processes.WaitForLineAsync(slirp, "1", TimeSpan.FromSeconds(30)), "slirp4netns did not configure the namespace");

        // The pod's app listens on its own loopback only: nothing outside the pod can reach it directly.
        Process app = _processes.StartProgram("ip", "netns", "exec", _netns, "busybox", "httpd", "-f", "-p", $"127.0.0.1:{Port}", "-h", _www);
        Process sidecar = _processes.StartProgram("ip", "netns", "exec", _netns, BeemeshEnvironment.BeemeshPath, "sidecar",
            "--agent", _agent!.Directory, "--name", "web", "--inbound", "15006", "--port", $"{Port}/http", "--node-loopback", "10.0.2.2");
        Assert.True(await _processes.WaitForLineAsync(sidecar, "beemesh sidecar: spiffe://", TimeSpan.FromSeconds(60)), "the sidecar did not start");
        string started = _processes.Lines(sidecar).First(l => l.StartsWith("beemesh sidecar: spiffe://", StringComparison.Ordinal));
        output.WriteLine(started);
        Assert.Contains("inbound through the agent's tunnel port 127.0.0.1:", started, StringComparison.Ordinal);
        Assert.False(app.HasExited, "the pod's app exited");

        // From a `beemesh run` workload, by name: through the agent's tunnel port into the pod.
        BeemeshRunResult call = await BeemeshRun.RunAsync(_agent.Workload("client"),
            $"curl -s --max-time 10 -w ' %{{http_code}}' http://web.default:{Port}/", TimeSpan.FromSeconds(90));
        output.WriteLine(call.ToString());
        Assert.Equal(0, call.ExitCode);
        Assert.Equal("pod-page\n 200", call.Stdout.Trim('\n'));
        // The agent handed the connection over; it relayed nothing.
        using (HttpClient admin = AgentAdmin.Client(_agent.Directory))
        {
            string metrics = await admin.GetStringAsync("metrics");
            string[] tunnel = [.. metrics.Split('\n').Where(l => l.StartsWith("beemesh_agent_tunnel_connections_total{", StringComparison.Ordinal))];
            output.WriteLine(string.Join('\n', tunnel));
            Assert.Contains("beemesh_agent_tunnel_connections_total{reason=\"relayed\"} 0", tunnel);
            Assert.DoesNotContain("beemesh_agent_tunnel_connections_total{reason=\"handed_off\"} 0", tunnel);
        }

        // DENY the caller: the pod's sidecar refuses it (403 for an /http port).
        (int code, string text) = await _agent.ApplyPolicyAsync("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: web-deny-client
              namespace: default
            spec:
              action: DENY
              rules:
              - from:
                - source:
                    principals: ["example.org/ns/default/sa/client"]
            """);
        output.WriteLine(text);
        Assert.Equal(0, code);
        // The next call goes after the pod's sidecar has said it enforces the new set (its report, sent at once).
        using (HttpClient admin = AgentAdmin.Client(_agent.Directory))
        {
            Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.ReportsChangedAsync(admin, p), () => AgentAdmin.PolicyInForceAsync(admin, "web"), TimeSpan.FromSeconds(30)),
                "the pod's sidecar did not report the new policy set");
        }

        BeemeshRunResult denied = await BeemeshRun.RunAsync(_agent.Workload("client"),
            $"curl -s --max-time 10 -o /dev/null -w '%{{http_code}}' http://web.default:{Port}/", TimeSpan.FromSeconds(90));
        string status = denied.Stdout.Trim();
        Assert.Equal("403", status);
        Assert.False(sidecar.HasExited, "the sidecar exited");
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            ProcessTree.Kill(p);
            return (-1, "timed out");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
