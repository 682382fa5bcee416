using System.Diagnostics;
using System.Net;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// <c>beemesh sidecar --dns</c> as in an injected pod: the app and its sidecar share a fresh network
/// namespace, networked by our slirp4netns (so the node's loopback is 10.0.2.2, as in a rootless
/// podman pod), and the app's resolv.conf names only 127.0.0.1. The app calls
/// <c>http://api.default.svc.cluster.local:PORT</c> and <c>http://api:PORT</c> unchanged, the
/// calls reach a <c>beemesh run</c> workload through the mesh with the sidecar's identity, a DENY
/// policy for that identity refuses them, and other names are answered by the upstream resolver.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class SidecarDnsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Port = 8093;
    private readonly string _www = Directory.CreateTempSubdirectory("beemesh-www-").FullName;
    private readonly string _netns = $"bm-dns-{Guid.NewGuid().ToString("N")[..8]}";
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
            Directory.Delete($"/etc/netns/{_netns}", recursive: true);
        }

        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }

        Directory.Delete(_www, recursive: true);
    }

    [SkippableFact]
    public async Task App_in_the_pod_calls_a_mesh_service_by_name_through_the_sidecar_resolver_and_policy_applies()
    {
        BeemeshEnvironment.RequireReady("busybox", "curl", "ss", "ip");
        Skip.If(_agent is null, "the agent could not be started (needs out/bin and root)");
        await File.WriteAllTextAsync(Path.Combine(_www, "index.html"), "api-page\n");
        await using var api = BeemeshRun.Start(_agent!.Workload("api", $"{Port}/http"),
            $"busybox httpd -f -p {Port} -h {_www} & " +
            $"while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo api-ready; wait");
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(30)), api.Stdout + api.Stderr);

        // The pod: a fresh network namespace with loopback up and our slirp4netns on tap0.
        Assert.Equal(0, Run("ip", "netns", "add", _netns).ExitCode);
        _netnsMade = true;
        Directory.CreateDirectory($"/etc/netns/{_netns}");
        // ip netns exec mounts this over /etc/resolv.conf for what it runs: what dnsConfig gives a pod.
        await File.WriteAllTextAsync($"/etc/netns/{_netns}/resolv.conf",
            "nameserver 127.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n");
        Assert.Equal(0, Run("ip", "netns", "exec", _netns, "ip", "link", "set", "lo", "up").ExitCode);
        Process slirp = _processes.StartProgram("sh", "-c", "exec \"$0\" --configure --ready-fd=3 --netns-type=path \"$1\" tap0 3>&1 1>&2",
            Path.Combine(BeemeshEnvironment.BinDirectory!, "beemesh-slirp"), $"/run/netns/{_netns}");
        Assert.True(await _processes.WaitForLineAsync(slirp, "1", TimeSpan.FromSeconds(30)), "slirp4netns did not configure the namespace");

        // Upstream for other names: a resolver on the node's loopback, reached from the pod at 10.0.2.2.
        await using var upstream = new LoopbackDnsServer();
        upstream.AddA("outside.example", IPAddress.Parse("192.0.2.44"));

        Process sidecar = _processes.StartProgram("ip", "netns", "exec", _netns, BeemeshEnvironment.BeemeshPath, "sidecar",
            "--agent", _agent!.Directory, "--name", "web", "--inbound", "15006",
            "--dns", "127.0.0.1:53", "--dns-upstream", $"10.0.2.2:{upstream.EndPoint.Port}", "--node-loopback", "10.0.2.2");
        Assert.True(await _processes.WaitForLineAsync(sidecar, "beemesh sidecar: spiffe://", TimeSpan.FromSeconds(60)), "the sidecar did not start");
        string started = _processes.Lines(sidecar).First(l => l.StartsWith("beemesh sidecar: spiffe://", StringComparison.Ordinal));
        Assert.Contains($"DNS 127.0.0.1:53 (other names to 10.0.2.2:{upstream.EndPoint.Port})", started, StringComparison.Ordinal);
        string identity = started.Split(' ')[2]; // spiffe://TD/ns/default/sa/web

        // By the full name and by the short one (through the search list), unchanged URLs.
        var full = InPod("curl", "-s", "--max-time", "10", "-w", " %{http_code} %{remote_ip}", $"http://api.default.svc.cluster.local:{Port}/");
        output.WriteLine(full.Output);
        Assert.Equal(0, full.ExitCode);
        Assert.Equal("api-page\n 200 127.100.0.1", full.Output);
        var shortName = InPod("curl", "-s", "--max-time", "10", "-w", " %{http_code} %{remote_ip}", $"http://api:{Port}/");
        Assert.Equal("api-page\n 200 127.100.0.1", shortName.Output);

        // Other names go upstream; a mesh name has no AAAA.
        var outside = InPod("busybox", "nslookup", "outside.example", "127.0.0.1");
        output.WriteLine(outside.Output);
        Assert.Contains("192.0.2.44", outside.Output, StringComparison.Ordinal);
        Assert.Contains("outside.example", upstream.QueriedNames);
        var aaaa = InPod("busybox", "nslookup", "-type=AAAA", "api.default.svc.cluster.local", "127.0.0.1");
        output.WriteLine(aaaa.Output);
        Assert.DoesNotContain("NXDOMAIN", aaaa.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Address: 127.100.0.1", aaaa.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("api.default.svc.cluster.local", upstream.QueriedNames);

        // DENY the pod's identity at api: its calls are refused there (403 for an /http port).
        string principal = identity["spiffe://".Length..];
        (int code, string text) = await _agent!.ApplyPolicyAsync($"""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: api-deny-web
              namespace: default
            spec:
              action: DENY
              rules:
              - from:
                - source:
                    principals: ["{principal}"]
            """);
        output.WriteLine(text);
        Assert.Equal(0, code);
        // The next call goes after api's sidecar has said it enforces the new set (its report, sent at once).
        using HttpClient admin = AgentAdmin.Client(_agent.Directory);
        Assert.True(await AgentAdmin.UntilAsync(p => AgentAdmin.ReportsChangedAsync(admin, p), () => AgentAdmin.PolicyInForceAsync(admin, "api"), TimeSpan.FromSeconds(30)),
            "api's sidecar did not report the new policy set");
        string status = InPod("curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", $"http://api.default.svc.cluster.local:{Port}/").Output;
        Assert.Equal("403", status);
        Assert.False(sidecar.HasExited, "the sidecar exited");
    }

    private (int ExitCode, string Output) InPod(params string[] args) => Run("ip", ["netns", "exec", _netns, .. args]);

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
