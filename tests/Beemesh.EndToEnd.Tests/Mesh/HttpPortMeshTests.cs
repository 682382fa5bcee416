using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Mesh;

/// <summary>
/// A port declared <c>/http</c> end to end: api runs busybox httpd behind <c>--port P/http</c>, web
/// calls it by name with curl over HTTP/1.1 and HTTP/2 with prior knowledge, and an
/// AuthorizationPolicy on a path is enforced per request while other paths keep working.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class HttpPortMeshTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Port = 8088;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _www = Directory.CreateTempSubdirectory("beemesh-www-").FullName;
    private MeshAgentProcess? _agent;

    public async Task InitializeAsync() => _agent = await MeshAgentProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }

        Directory.Delete(_www, recursive: true);
    }

    [SkippableFact]
    public async Task Web_calls_an_http_port_by_name_and_a_deny_on_admin_refuses_only_admin_requests()
    {
        BeemeshEnvironment.RequireReady("busybox", "curl", "ss");
        Skip.If(_agent is null, "the agent could not be started");
        await File.WriteAllTextAsync(Path.Combine(_www, "index.html"), "root-page\n");
        await File.WriteAllTextAsync(Path.Combine(_www, "admin"), "admin-page\n");
        await using var api = BeemeshRun.Start(Mesh("api", $"{Port}/http"),
            $"busybox httpd -f -p {Port} -h {_www} & " +
            $"while ! ss -ltn | grep -q ':{Port} '; do sleep 0.05; done; echo api-ready; wait");
        Assert.True(await api.WaitForLineAsync("api-ready", TimeSpan.FromSeconds(20)), api.Stdout);

        // No policy: both protocols reach the workload (which only ever sees HTTP/1.1).
        BeemeshRunResult open = await CurlAsync("/admin", "/");
        Assert.Contains("h1 /admin 200 admin-page", open.Stdout, StringComparison.Ordinal);
        Assert.Contains("h1 / 200 root-page", open.Stdout, StringComparison.Ordinal);
        Assert.Contains("h2 /admin 200 admin-page", open.Stdout, StringComparison.Ordinal);
        Assert.Contains("h2 / 200 root-page", open.Stdout, StringComparison.Ordinal);

        (int code, string text) = await PolicyAsync("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: api-no-admin
              namespace: default
            spec:
              action: DENY
              rules:
              - to:
                - operation:
                    paths: ["/admin*"]
            """);
        output.WriteLine(text);
        Assert.Equal(0, code);

        // HTTP/1.1 asks for /admin and then / on one connection: the first is refused, the second passes.
        BeemeshRunResult denied = await CurlAsync("/admin", "/");
        Assert.Contains("h1 /admin 403 RBAC: access denied", denied.Stdout, StringComparison.Ordinal);
        Assert.Contains("h1 / 200 root-page", denied.Stdout, StringComparison.Ordinal);
        Assert.Contains("h2 /admin 403 RBAC: access denied", denied.Stdout, StringComparison.Ordinal);
        Assert.Contains("h2 / 200 root-page", denied.Stdout, StringComparison.Ordinal);
        Assert.Contains("h1 connections=1", denied.Stdout, StringComparison.Ordinal);
    }

    private string[] Mesh(string name, params string[] ports) => _agent!.Workload(name, ports);

    /// <summary>
    /// From a web workload: one HTTP/1.1 curl fetching <paramref name="paths"/> in order on one
    /// connection, then one HTTP/2 (prior knowledge) curl per path — curl 7.88 sends nothing for a
    /// second URL on a reused h2c connection, even to a plain Kestrel (HTTP/2 reuse is covered by the
    /// in-process tests). Prints <c>h1|h2 PATH STATUS BODY</c> per request and <c>h1 connections=N</c>.
    /// </summary>
    private async Task<BeemeshRunResult> CurlAsync(params string[] paths)
    {
        string urls = string.Join(' ', paths.Select(p => $"http://api.default:{Port}{p}"));
        const string Format = "'\\nmeta %{url_effective} %{http_code} %{num_connects}\\n'";
        string script = $"curl -s --max-time 10 -w {Format} {urls} | sed 's/^/h1 /'; " +
            string.Concat(paths.Select(p => $"curl -s --max-time 10 --http2-prior-knowledge -w {Format} http://api.default:{Port}{p} | sed 's/^/h2 /'; "));
        BeemeshRunResult result = await BeemeshRun.RunAsync(Mesh("web"), script, Timeout);
        output.WriteLine(result.ToString());
        return new BeemeshRunResult(result.ExitCode, Summarize(result.Stdout), result.Stderr, result.TimedOut, result.Elapsed);
    }

    /// <summary>Folds curl's "BODY\nmeta URL STATUS CONNECTS" pairs into "hN PATH STATUS BODY" lines.</summary>
    private static string Summarize(string stdout)
    {
        var lines = new List<string>();
        string body = "";
        int connections = 0;
        string? protocol = null;
        foreach (string raw in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string proto = raw[..2];
            string rest = raw.Length > 3 ? raw[3..] : "";
            if (proto != protocol && protocol is not null)
            {
                lines.Add($"{protocol} connections={connections}");
                connections = 0;
            }

            protocol = proto;
            if (rest.StartsWith("meta ", StringComparison.Ordinal))
            {
                string[] parts = rest.Split(' ');
                string path = new Uri(parts[1]).AbsolutePath;
                connections += int.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
                lines.Add($"{proto} {path} {parts[2]} {body}");
                body = "";
            }
            else if (rest.Length != 0)
            {
                body = rest;
            }
        }

        lines.Add($"{protocol} connections={connections}");
        return string.Join('\n', lines);
    }

    private Task<(int Code, string Output)> PolicyAsync(string yaml) => _agent!.ApplyPolicyAsync(yaml);
}
