using System.Diagnostics;
using System.Globalization;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// Runs the mesh measurements side by side: a node agent in a temp directory, an <c>api</c>
/// workload (iperf3 server, echo server, ticker) and <c>web</c> callers, against the direct path
/// through the stack and a haproxy mutual-TLS pair on loopback. Everything it starts is killed
/// on the way out, also on Ctrl-C.
/// </summary>
internal sealed class MeshBenchRunner(MeshBenchOptions options, CommandLog log, TextWriter progress)
{
    private const int IperfPort = 5201;
    private const int EchoPort = 7000;
    private const int TickerPort = 9000;
    private const string DenyName = "api-deny-web";

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

    private readonly string _self = Environment.ProcessPath ?? Path.Combine(AppContext.BaseDirectory, "beemesh-loadtests");
    private readonly MeshBenchResults _results = new();
    private BenchClients _clients = null!;
    private string _work = "";
    private string _agentDir = "";

    public async Task<MeshBenchResults> RunAsync(CancellationToken token)
    {
        _clients = new BenchClients(log, progress, _results.Notes, "mesh-bench");
        _work = Directory.CreateTempSubdirectory("beemesh-meshbench-").FullName;
        _agentDir = Path.Combine(_work, "agent");
        Directory.CreateDirectory(_agentDir);
        try
        {
            await using MeshProcess agent = MeshProcess.Start([options.BeemeshPath, "agent", "--state-dir", _agentDir], Log("agent"), log, "setup");
            using var admin = new AdminSocketClient(_agentDir);
            await WaitAsync(() => admin.ResolvesAsync("nothing.default", token).ContinueWith(_ => File.Exists(Path.Combine(_agentDir, "admin.sock")), token), "agent admin socket", token).ConfigureAwait(false);

            await using IperfServer iperf = await IperfServer.StartAsync(_work, "host", log, token).ConfigureAwait(false);
            await using HostTcpServer echo = HostTcpServer.Echo();
            log.Add("setup", ["(in-process echo server on 127.0.0.1:" + echo.Port.ToString(CultureInfo.InvariantCulture) + ")"]);
            // The fair comparison for the tunnel: the same servers inside a plain guest, published
            // with -p, so a client in another plain guest crosses two stacks like web -> api does.
            int guestIperf = HaproxyPair.FreePort();
            int guestEcho = HaproxyPair.FreePort();
            string serversScript = $"iperf3 -s -p {IperfPort} & exec {CommandLog.QuoteOne(_self)} echo-server 0.0.0.0 {EchoPort}";
            await using MeshProcess servers = MeshProcess.Start(
                [options.BeemeshPath, "run", "-p", $"127.0.0.1:{guestIperf}:{IperfPort}", "-p", $"127.0.0.1:{guestEcho}:{EchoPort}", "--", "/bin/sh", "-c", serversScript],
                Log("servers"), log, "setup", marker: "echo-server listening");
            await servers.Marker.WaitAsync(TimeSpan.FromSeconds(30), token).ConfigureAwait(false);
            await using HaproxyPair haproxy = await HaproxyPair.StartAsync(_work, [iperf.Port, echo.Port, guestIperf, guestEcho], log, token).ConfigureAwait(false);
            var ports = new BenchPorts(iperf.Port, echo.Port, guestIperf, guestEcho, haproxy.Fronts[0], haproxy.Fronts[1], haproxy.Fronts[2], haproxy.Fronts[3]);

            string guestScript = $"iperf3 -s -p {IperfPort} & ncat -l -k {TickerPort} -c 'while true; do echo tick; sleep 0.05; done' & exec {CommandLog.QuoteOne(_self)} echo-server 0.0.0.0 {EchoPort}";
            await using MeshProcess api = MeshProcess.Start(
                [options.BeemeshPath, "run", "--agent", _agentDir, "--name", "api", "--port", $"{IperfPort}", "--port", $"{EchoPort}", "--port", $"{TickerPort}", "--", "/bin/sh", "-c", guestScript],
                Log("api"), log, "setup", marker: "echo-server listening");
            await api.Marker.WaitAsync(TimeSpan.FromSeconds(30), token).ConfigureAwait(false);
            await WaitAsync(() => admin.ResolvesAsync("api.default", token), "api registration", token).ConfigureAwait(false);
            await Task.Delay(1000, token).ConfigureAwait(false);

            await ThroughputAsync(ports, token).ConfigureAwait(false);
            await LatencyAsync(ports, token).ConfigureAwait(false);
            await ConnectionsAsync(ports, admin, token).ConfigureAwait(false);
            await IdleRssAsync(admin, token).ConfigureAwait(false);
            await RevocationAsync(admin, token).ConfigureAwait(false);
            return _results;
        }
        finally
        {
            ChildProcesses.KillAll();
            try
            {
                Directory.Delete(_work, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private string[] Mesh(string? name, params string[] command)
    {
        var argv = new List<string> { options.BeemeshPath, "run", "--agent", _agentDir };
        if (name is not null)
        {
            argv.Add("--name");
            argv.Add(name);
        }

        argv.Add("--");
        argv.AddRange(command);
        return [.. argv];
    }

    private async Task ThroughputAsync(BenchPorts ports, CancellationToken token)
    {
        string s = options.ThroughputSeconds.ToString(CultureInfo.InvariantCulture);
        await IperfAsync(MeshReport.Loopback, ["iperf3", "-c", "127.0.0.1", "-p", Port(ports.HostIperf), "-t", s, "-J"], token).ConfigureAwait(false);
        await IperfAsync(MeshReport.Direct, Mesh(null, "iperf3", "-c", "10.0.2.2", "-p", Port(ports.HostIperf), "-t", s, "-J"), token).ConfigureAwait(false);
        await IperfAsync(MeshReport.Haproxy, ["iperf3", "-c", "127.0.0.1", "-p", Port(ports.HaproxyHostIperf), "-t", s, "-J"], token).ConfigureAwait(false);
        await IperfAsync(MeshReport.GuestDirect, Mesh(null, "iperf3", "-c", "10.0.2.2", "-p", Port(ports.GuestIperf), "-t", s, "-J"), token).ConfigureAwait(false);
        await IperfAsync(MeshReport.HaproxyGuests, Mesh(null, "iperf3", "-c", "10.0.2.2", "-p", Port(ports.HaproxyGuestIperf), "-t", s, "-J"), token).ConfigureAwait(false);
        await IperfAsync(MeshReport.Mesh, Mesh("web", "iperf3", "-c", "api", "-p", Port(IperfPort), "-t", s, "-J"), token).ConfigureAwait(false);
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private async Task IperfAsync(string path, string[] argv, CancellationToken token) =>
        _results.ThroughputGbps[path] = await _clients.IperfGbpsAsync(path, argv, options.ThroughputSeconds, token).ConfigureAwait(false);

    private async Task LatencyAsync(BenchPorts ports, CancellationToken token)
    {
        string s = options.LatencySeconds.ToString(CultureInfo.InvariantCulture);
        string rate = MeshBenchOptions.RequestRate.ToString(CultureInfo.InvariantCulture);
        const string step = RateClient.StepName;
        await ClientAsync(_results.Latency, "latency", MeshReport.Loopback, [_self, "rate-client", "127.0.0.1", Port(ports.HostEcho), s, rate], step, token).ConfigureAwait(false);
        await ClientAsync(_results.Latency, "latency", MeshReport.Direct, Mesh(null, _self, "rate-client", "10.0.2.2", Port(ports.HostEcho), s, rate), step, token).ConfigureAwait(false);
        await ClientAsync(_results.Latency, "latency", MeshReport.Haproxy, [_self, "rate-client", "127.0.0.1", Port(ports.HaproxyHostEcho), s, rate], step, token).ConfigureAwait(false);
        await ClientAsync(_results.Latency, "latency", MeshReport.GuestDirect, Mesh(null, _self, "rate-client", "10.0.2.2", Port(ports.GuestEcho), s, rate), step, token).ConfigureAwait(false);
        await ClientAsync(_results.Latency, "latency", MeshReport.HaproxyGuests, Mesh(null, _self, "rate-client", "10.0.2.2", Port(ports.HaproxyGuestEcho), s, rate), step, token).ConfigureAwait(false);
        await ClientAsync(_results.Latency, "latency", MeshReport.Mesh, Mesh("web", _self, "rate-client", "api", Port(EchoPort), s, rate), step, token).ConfigureAwait(false);
    }

    private async Task ConnectionsAsync(BenchPorts ports, AdminSocketClient admin, CancellationToken token)
    {
        string s = options.ConnectionSeconds.ToString(CultureInfo.InvariantCulture);
        string copies = MeshBenchOptions.ConnectionCopies.ToString(CultureInfo.InvariantCulture);
        const string step = NewConnectionClient.StepName;
        await ClientAsync(_results.Connections, "connections", MeshReport.Direct, Mesh(null, _self, "conn-client", "10.0.2.2", Port(ports.HostEcho), s, copies), step, token).ConfigureAwait(false);
        await ClientAsync(_results.Connections, "connections", MeshReport.Haproxy, [_self, "conn-client", "127.0.0.1", Port(ports.HaproxyHostEcho), s, copies], step, token).ConfigureAwait(false);
        await ClientAsync(_results.Connections, "connections", MeshReport.GuestDirect, Mesh(null, _self, "conn-client", "10.0.2.2", Port(ports.GuestEcho), s, copies), step, token).ConfigureAwait(false);
        await ClientAsync(_results.Connections, "connections", MeshReport.HaproxyGuests, Mesh(null, _self, "conn-client", "10.0.2.2", Port(ports.HaproxyGuestEcho), s, copies), step, token).ConfigureAwait(false);
        string before = await admin.MetricsAsync(token).ConfigureAwait(false);
        await ClientAsync(_results.Connections, "connections", MeshReport.Mesh, Mesh("web", _self, "conn-client", "api", Port(EchoPort), s, copies), step, token).ConfigureAwait(false);
        string after = await admin.MetricsAsync(token).ConfigureAwait(false);
        string? handshakes = HandshakeDelta(before, after);
        _results.MeshHandshakes = handshakes ?? "not visible in the agent's metrics (tunnels are pooled: one HTTP/2 connection per peer per sidecar run)";
    }

    /// <summary>
    /// New completed TLS handshakes per side during the test: the sum over workloads of
    /// <c>beemesh_mesh_tls_handshakes_total{side=...,result="ok"}</c>, after minus before.
    /// </summary>
    private static string? HandshakeDelta(string before, string after)
    {
        static Dictionary<string, double> Sum(string text)
        {
            var sums = new Dictionary<string, double>();
            foreach (string line in text.Split('\n'))
            {
                if (!line.StartsWith("beemesh_mesh_tls_handshakes_total{", StringComparison.Ordinal) || !line.Contains("result=\"ok\"", StringComparison.Ordinal))
                {
                    continue;
                }

                string side = line.Contains("side=\"server\"", StringComparison.Ordinal) ? "server" : "client";
                int space = line.LastIndexOf(' ');
                if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                {
                    sums[side] = sums.GetValueOrDefault(side) + value;
                }
            }

            return sums;
        }

        Dictionary<string, double> a = Sum(before);
        Dictionary<string, double> b = Sum(after);
        if (b.Count == 0)
        {
            return null;
        }

        return string.Join(", ", b.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Value - a.GetValueOrDefault(kv.Key):0} completed on the {kv.Key} side"));
    }

    private async Task ClientAsync(Dictionary<string, StepStats?> into, string scope, string path, string[] argv, string step, CancellationToken token) =>
        into[path] = await _clients.StepAsync(scope, path, argv, step, token).ConfigureAwait(false);

    private async Task IdleRssAsync(AdminSocketClient admin, CancellationToken token)
    {
        progress.WriteLine("mesh-bench: idle sidecar RSS");
        await using MeshProcess idle = MeshProcess.Start(Mesh("idle", "sleep", "600"), Log("idle"), log, "rss");
        await WaitAsync(() => admin.ResolvesAsync("idle.default", token), "idle registration", token).ConfigureAwait(false);
        await Task.Delay(2000, token).ConfigureAwait(false);
        _results.IdleSidecarRssKib = VmRssKib(idle.Pid);
        (_results.IdleSidecarPssKib, _results.IdleSidecarPrivateKib) = SmapsRollupKib(idle.Pid);
        foreach (int child in Children(idle.Pid))
        {
            _results.IdleGuestRssKib = (_results.IdleGuestRssKib ?? 0) + (VmRssKib(child) ?? 0);
        }
    }

    private async Task RevocationAsync(AdminSocketClient admin, CancellationToken token)
    {
        for (int i = 0; i < options.RevocationTries; i++)
        {
            progress.Write(i == 0 ? "mesh-bench: revocation " : ".");
            await using MeshProcess web = MeshProcess.Start(Mesh("web", "ncat", "--recv-only", "api", TickerPort.ToString(CultureInfo.InvariantCulture)),
                Log("revocation"), i == 0 ? log : new CommandLog(), "revocation", marker: "tick");
            try
            {
                await web.Marker.WaitAsync(TimeSpan.FromSeconds(30), token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _results.RevocationFailures++;
                _results.Notes.Add($"revocation try {i + 1}: the stream never started ({web.Tail()})");
                continue;
            }

            if (i == 0)
            {
                log.Add("revocation", ["POST", "admin.sock:/v1/policies", "(DENY principals example.org/ns/default/sa/web)"]);
                log.Add("revocation", ["DELETE", "admin.sock:/v1/policies/default/" + DenyName]);
            }

            await admin.ApplyPolicyAsync(DenyWeb, token).ConfigureAwait(false);
            var clock = Stopwatch.StartNew();
            try
            {
                await web.WaitForExitAsync(token).WaitAsync(TimeSpan.FromSeconds(10), token).ConfigureAwait(false);
                _results.RevocationMs.Add(clock.Elapsed.TotalMilliseconds);
            }
            catch (TimeoutException)
            {
                _results.RevocationFailures++;
                _results.Notes.Add($"revocation try {i + 1}: the stream was not cut within 10 s");
            }
            finally
            {
                await admin.DeletePolicyAsync("default", DenyName, token).ConfigureAwait(false);
            }
        }

        progress.WriteLine();
    }

    internal static async Task WaitAsync(Func<Task<bool>> condition, string what, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition().ConfigureAwait(false))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException($"timed out waiting for {what}");
            }

            await Task.Delay(50, token).ConfigureAwait(false);
        }
    }

    private string Log(string name) => Path.Combine(_work, name + ".log");

    private static long? VmRssKib(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    /// <summary>Pss and Private_Clean + Private_Dirty from /proc/PID/smaps_rollup: what one more sidecar costs.</summary>
    private static (long? Pss, long? Private) SmapsRollupKib(int pid)
    {
        long? pss = null, priv = null;
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
            {
                string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 2 || !long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kib))
                {
                    continue;
                }

                switch (parts[0])
                {
                    case "Pss:":
                        pss = kib;
                        break;
                    case "Private_Clean:" or "Private_Dirty:":
                        priv = (priv ?? 0) + kib;
                        break;
                }
            }
        }
        catch (IOException)
        {
        }

        return (pss, priv);
    }

    private static IEnumerable<int> Children(int pid)
    {
        var result = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int candidate))
            {
                continue;
            }

            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], CultureInfo.InvariantCulture) == pid)
                {
                    result.Add(candidate);
                }
            }
            catch (IOException)
            {
            }
        }

        return result;
    }

}
