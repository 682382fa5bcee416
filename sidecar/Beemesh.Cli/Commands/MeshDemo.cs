using System.Diagnostics;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;

namespace Beemesh.Cli.Commands;

/// <summary>
/// The mesh half of <c>beemesh demo</c>: an agent, an <c>api</c> workload, and callers by name —
/// an allowed call, a refused one once an ALLOW policy names only <c>web</c>, and a live stream
/// cut by a DENY policy — with every identity printed. All on this machine.
/// </summary>
public static class MeshDemo
{
    private const string AllowWeb = """
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
        """;

    private const string DenyWeb = """
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
        """;

    /// <summary>Runs the scenario; true when every step behaved as described.</summary>
    public static async Task<bool> RunAsync(string self)
    {
        string dir = Directory.CreateTempSubdirectory("beemesh-demo-").FullName;
        try
        {
            await using var agent = await AgentHost.StartAsync(new AgentOptions { StateDirectory = dir });
            using var client = new AgentClient(dir);
            Console.WriteLine($"mesh: agent for trust domain example.org in {dir}");

            using var api = Start(self, ["run", "--agent", dir, "--name", "api", "--port", "9000", "--", self, "demo-ticker", "9000"]);
            await WaitUntilAsync(async () => await client.ResolveAsync("api.default") is not null, TimeSpan.FromSeconds(20));
            await Task.Delay(1000); // the ticker listens once the guest runs

            Console.WriteLine("mesh: web calls api.default:9000 (no policy yet: allowed)");
            bool allowed = Run(self, ["run", "--agent", dir, "--name", "web", "--", self, "probe", "api.default", "9000", "hi"]).Contains("hello from api", StringComparison.Ordinal);

            await client.ApplyPoliciesAsync(AllowWeb);
            Console.WriteLine("mesh: applied ALLOW api-allow-web (only spiffe://example.org/ns/default/sa/web)");
            Console.WriteLine("mesh: evil calls api.default:9000");
            bool refused = !Run(self, ["run", "--agent", dir, "--name", "evil", "--", self, "probe", "api.default", "9000", "hi"]).Contains("hello from api", StringComparison.Ordinal);

            Console.WriteLine("mesh: web opens a live stream to api, then DENY api-deny-web is applied");
            using var stream = Start(self, ["run", "--agent", dir, "--name", "web", "--", self, "demo-stream", "api.default", "9000"], echo: true);
            await Task.Delay(1500);
            var applied = Stopwatch.StartNew();
            await client.ApplyPoliciesAsync(DenyWeb);
            bool cut = await stream.WaitForExitAsync(TimeSpan.FromSeconds(10));
            Console.WriteLine(cut
                ? $"mesh: the live stream ended {applied.ElapsedMilliseconds} ms after the DENY was applied"
                : "mesh: the live stream was NOT cut");

            Console.WriteLine($"mesh: allowed call {(allowed ? "ok" : "FAILED")}, refused call {(refused ? "ok" : "FAILED")}, live stream cut {(cut ? "ok" : "FAILED")}");
            return allowed && refused && cut;
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout && !await condition())
        {
            await Task.Delay(100);
        }
    }

    /// <summary>Runs to completion, echoing its output (identities included) and returning it.</summary>
    private static string Run(string self, string[] args)
    {
        using var p = Start(self, args, echo: true);
        p.WaitForExit(TimeSpan.FromSeconds(30));
        return p.Output;
    }

    private static DemoProcess Start(string self, string[] args, bool echo = false) => new(self, args, echo);

    private sealed class DemoProcess : IDisposable
    {
        private readonly Process _process;
        private readonly System.Text.StringBuilder _output = new();

        public DemoProcess(string file, string[] args, bool echo)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            _process = new Process { StartInfo = psi };
            void Line(string? line)
            {
                if (line is null)
                {
                    return;
                }

                lock (_output)
                {
                    _output.AppendLine(line);
                }

                if (echo || line.StartsWith("beemesh run: spiffe://", StringComparison.Ordinal))
                {
                    Console.WriteLine($"  {line}");
                }
            }

            _process.OutputDataReceived += (_, e) => Line(e.Data);
            _process.ErrorDataReceived += (_, e) => Line(e.Data);
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

        public async Task<bool> WaitForExitAsync(TimeSpan timeout)
        {
            try
            {
                await _process.WaitForExitAsync().WaitAsync(timeout);
                return true;
            }
            catch (TimeoutException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(5));
            }

            _process.Dispose();
        }
    }
}
