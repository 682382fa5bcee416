using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// Identity-bound sockets end to end on one node: an agent, and workloads started with
/// <c>beemesh run --name</c> that find each other by name, talk through mTLS tunnels with their
/// SPIFFE identities, and are authorized by AuthorizationPolicy — continuously.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class MeshTests(ITestOutputHelper output) : MeshAgentTest
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private string[] Mesh(string name, params string[] ports) => Agent!.Workload(name, ports);

    private Task<(int Code, string Output)> PolicyAsync(string yaml) => Agent!.ApplyPolicyAsync(yaml);

    private async Task<BeemeshRun> StartApiAsync(int port)
    {
        // The api workload answers every connection with a greeting and then a tick every 100 ms.
        var api = BeemeshRun.Start(Mesh("api", $"{port}/tcp"),
            $"ncat -l -k {port} -c 'echo hello-from-api; while true; do echo tick; sleep 0.1; done' & " +
            $"while ! ss -ltn | grep -q ':{port} '; do sleep 0.05; done; echo api-ready; wait");
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(20)), api.Stdout);
        return api;
    }

    [SkippableFact]
    public async Task Web_calls_api_by_name_a_policy_governs_who_may_and_a_deny_cuts_a_live_stream()
    {
        BeemeshEnvironment.RequireReady("ncat", "ss");
        Skip.If(Agent is null, "the agent could not be started");
        await using var api = await StartApiAsync(9000);

        // 1. No ALLOW policy yet: everything is allowed (Istio semantics). web finds api by name.
        // The first flow pays for the tunnel handshake and both sidecars warming up; on a loaded machine that has taken over 5 s.
        // --recv-only: a client that half-closes at once races the greeting, since `ncat -l -c` ends the
        // connection on the client's FIN (over plain TCP it loses every time); the mesh carries that FIN too.
        var web = await BeemeshRun.RunAsync(Mesh("web"), "timeout 20 ncat --recv-only api.default.svc.cluster.local 9000 | head -1", Timeout);
        output.WriteLine(web.ToString());
        Assert.Contains("hello-from-api", web.Stdout, StringComparison.Ordinal);

        // 2. ALLOW web only: evil is refused, web still gets through.
        var (code, text) = await PolicyAsync("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: api-allow-web
              namespace: default
            spec:
              action: ALLOW
              rules:
              - from:
                - source:
                    principals: ["example.org/ns/default/sa/web"]
            """);
        output.WriteLine(text);
        Assert.Equal(0, code);
        var evil = await BeemeshRun.RunAsync(Mesh("evil"), "timeout 20 ncat --recv-only api.default 9000 | head -1; echo done", Timeout);
        output.WriteLine(evil.ToString());
        Assert.Contains("done", evil.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("hello-from-api", evil.Stdout, StringComparison.Ordinal);
        Assert.Contains("403", evil.Stderr, StringComparison.Ordinal);

        // 3. A live stream from web is cut when a DENY for web arrives.
        await using var stream = BeemeshRun.Start(Mesh("web"), "ncat --recv-only api 9000; echo stream-ended");
        Assert.True(await stream.WaitForLineAsync("tick", TimeSpan.FromSeconds(15)), stream.Stdout + stream.Stderr + api.Stdout + api.Stderr);
        var applied = Stopwatch.StartNew();
        (code, text) = await PolicyAsync("""
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
                    principals: ["example.org/ns/default/sa/web"]
            """);
        Assert.Equal(0, code);
        Assert.True(await stream.WaitForLineAsync("stream-ended", TimeSpan.FromSeconds(5)), stream.Stdout);
        output.WriteLine($"policy applied -> live stream ended in {applied.ElapsedMilliseconds} ms (includes starting the CLI)");
    }

    [SkippableFact]
    public async Task Beemesh_run_execs_the_sidecar_executable_in_its_own_process()
    {
        Skip.If(Agent is null, "the agent could not be started");
        string sidecarExe = Path.Combine(BeemeshEnvironment.BinDirectory!, "beemesh-sidecar");
        Skip.IfNot(File.Exists(sidecarExe), $"{sidecarExe} is not built (./scripts/build)");

        // The process the test started is the one that runs the sidecar (exec, not a child): the
        // workload is still its child, it joined the mesh, and a run's exit status is its command's.
        await using var web = BeemeshRun.Start(Mesh("web"), "echo web-ready; sleep 60");
        Assert.True(await web.WaitForLineAsync("web-ready", TimeSpan.FromSeconds(20)), web.Stdout + web.Stderr);
        Assert.True(await web.WaitUntilAsync(r => r.Stderr.Contains("sa/web at ", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), web.Stderr);
        Assert.Equal("beemesh-sidecar", Path.GetFileName(new FileInfo($"/proc/{web.ProcessId}/exe").ResolveLinkTarget(returnFinalTarget: true)!.FullName));

        var plain = await BeemeshRun.RunAsync([], "exit 3", Timeout);
        output.WriteLine(plain.ToString());
        Assert.Equal(3, plain.ExitCode);

        // beemesh empties the machine trust store's variables for its own TLS only: the command, run
        // by the exec'd sidecar, gets them exactly as given (set, or unset).
        await using var env = BeemeshRun.Start(Mesh("env"), "echo \"file=${SSL_CERT_FILE-unset} dir=${SSL_CERT_DIR-unset}\"; echo env-done; sleep 60",
            new Dictionary<string, string> { ["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt" });
        Assert.True(await env.WaitForLineAsync("env-done", TimeSpan.FromSeconds(20)), env.Stdout + env.Stderr);
        Assert.Contains("file=/etc/ssl/certs/ca-certificates.crt dir=", env.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("file= ", env.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("dir=\n", env.Stdout.Replace("\r", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }
}
