using System.Diagnostics;
using System.Globalization;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.MeshBench;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>
/// The mesh across machines, side by side with a haproxy mutual-TLS pair between the same two
/// namespaces: N node namespaces on a bridge, an agent in each (the first creates the trust
/// domain, the others join it with one-time tokens), servers on the last node, clients on the
/// first. Everything it starts is killed and every namespace deleted on the way out, also on Ctrl-C.
/// </summary>
internal sealed class OverlayMeshBenchRunner(OverlayMeshBenchOptions options, CommandLog log, TextWriter progress)
{
    /// <summary>Ports inside a guest (the workloads and the plain published guest).</summary>
    private const int IperfPort = 5201;
    private const int EchoPort = 7000;

    /// <summary>Host processes in the server node's namespace (the paths without a stack).</summary>
    private const int HostIperfPort = 5301;
    private const int HostEchoPort = 7301;

    /// <summary>Ports the plain server guest publishes on the server node (the paths with stacks, no mesh).</summary>
    private const int PublishedIperfPort = 5401;
    private const int PublishedEchoPort = 7401;

    /// <summary>The plain server process of the start-to-first-call baseline.</summary>
    private const int DirectFirstCallPort = 7501;

    private const int NodePort = 15010;

    /// <summary>The client node's resolver (an NXDOMAIN-only server on its 127.0.0.1), UDP.</summary>
    private const int ResolverPort = 5353;

    /// <summary>Start-to-first-call samples taken with no resolver on the client node.</summary>
    private int NoResolverSamples => Math.Min(3, options.Samples);

    private readonly string _self = Environment.ProcessPath ?? Path.Combine(AppContext.BaseDirectory, "beemesh-loadtests");
    private readonly OverlayMeshResults _results = new();
    private BenchClients _clients = null!;
    private BridgedNodes _net = null!;
    private string _work = "";

    private int Client => 0;

    private int Server => options.Nodes - 1;

    private string ServerAddress => BridgedNodes.Address(Server);

    public async Task<OverlayMeshResults> RunAsync(CancellationToken token)
    {
        _results.LoadBefore = LoadAverage();
        _clients = new BenchClients(log, progress, _results.Notes, "overlay-mesh-bench");
        _work = Directory.CreateTempSubdirectory("beemesh-xbench-").FullName;
        var processes = new List<MeshProcess>();
        try
        {
            _net = await BridgedNodes.CreateAsync(options.Nodes, log, token).ConfigureAwait(false);
            await StartAgentsAsync(processes, token).ConfigureAwait(false);
            using var clientAdmin = new AdminSocketClient(AgentDir(Client));
            using var serverAdmin = new AdminSocketClient(AgentDir(Server));

            processes.Add(await StartMarkedAsync(_net.Exec(Client, _self, "nxdomain-server", "127.0.0.1", Port(ResolverPort)), "resolver", NxDomainServer.ReadyLine, token).ConfigureAwait(false));
            progress.WriteLine("overlay-mesh-bench: servers on the last node");
            processes.Add(MeshProcess.Start(_net.Exec(Server, "iperf3", "-s", "-p", Port(HostIperfPort)), Log("host-iperf"), log, "setup"));
            processes.Add(await StartMarkedAsync(_net.Exec(Server, _self, "echo-server", "0.0.0.0", Port(HostEchoPort)), "host-echo", "echo-server listening", token).ConfigureAwait(false));
            string serversScript = $"iperf3 -s -p {IperfPort} & exec {CommandLog.QuoteOne(_self)} echo-server 0.0.0.0 {EchoPort}";
            processes.Add(await StartMarkedAsync(
                _net.Exec(Server, options.BeemeshPath, "run", "-p", $"0.0.0.0:{PublishedIperfPort}:{IperfPort}", "-p", $"0.0.0.0:{PublishedEchoPort}:{EchoPort}", "--", "/bin/sh", "-c", serversScript),
                "published-guest", "echo-server listening", token).ConfigureAwait(false));
            await using HaproxyPair haproxy = await HaproxyPair.StartAcrossAsync(_work, [HostIperfPort, HostEchoPort, PublishedIperfPort, PublishedEchoPort],
                _net.Names[Client], _net.Names[Server], ServerAddress, log, token).ConfigureAwait(false);
            processes.Add(await StartMarkedAsync(
                _net.Exec(Server, options.BeemeshPath, "run", "--agent", AgentDir(Server), "--name", "api", "--port", Port(IperfPort), "--port", Port(EchoPort), "--", "/bin/sh", "-c", serversScript),
                "api", "echo-server listening", token).ConfigureAwait(false));
            await MeshBenchRunner.WaitAsync(() => clientAdmin.ResolvesAsync("api.default", token), "api's route on the client node", token).ConfigureAwait(false);
            await WaitListeningAsync(Server, HostIperfPort, token).ConfigureAwait(false);

            if (!System.Net.Quic.QuicConnection.IsSupported)
            {
                _results.QuicSkipped = "skipped: libmsquic not found";
            }

            await ThroughputAsync(haproxy, token).ConfigureAwait(false);
            await LatencyAsync(haproxy, token).ConfigureAwait(false);
            if (_results.QuicSkipped is null)
            {
                await CheckQuicUsedAsync(clientAdmin, serverAdmin, token).ConfigureAwait(false);
            }

            await FirstCallsAsync(clientAdmin, serverAdmin, token).ConfigureAwait(false);
            _results.LoadAfter = LoadAverage();
            return _results;
        }
        finally
        {
            for (int i = processes.Count - 1; i >= 0; i--)
            {
                await processes[i].DisposeAsync().ConfigureAwait(false);
            }

            ChildProcesses.KillAll();
            _net?.Dispose();
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

    /// <summary>
    /// Agent 1 creates the trust domain; every other agent joins it with its own one-time token.
    /// Done when the first node's <c>beemesh members</c> lists every node alive.
    /// </summary>
    private async Task StartAgentsAsync(List<MeshProcess> processes, CancellationToken token)
    {
        progress.WriteLine($"overlay-mesh-bench: {options.Nodes} agents");
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < options.Nodes; i++)
        {
            var argv = new List<string> { options.BeemeshPath, "agent", "--state-dir", AgentDir(i), "--node-name", NodeName(i), "--listen", $"{BridgedNodes.Address(i)}:{NodePort}" };
            if (i > 0)
            {
                ProcessResult created = await ProcessRunner.RunAsync([options.BeemeshPath, "token", "create", "--state-dir", AgentDir(0)], TimeSpan.FromSeconds(30), token).ConfigureAwait(false);
                if (i == 1)
                {
                    log.AddLine("setup", "TOKEN=$(" + CommandLog.Quote([options.BeemeshPath, "token", "create", "--state-dir", AgentDir(0)]) + " | head -1)");
                }

                string joinToken = created.StandardOutput.Split('\n')[0].Trim();
                if (created.ExitCode != 0 || joinToken.Length == 0)
                {
                    throw new InvalidOperationException($"beemesh token create failed: {created.StandardError.Trim()}");
                }

                argv.AddRange(["--join", $"{BridgedNodes.Address(0)}:{NodePort}", "--token", joinToken]);
            }

            Directory.CreateDirectory(AgentDir(i));
            if (i < 2)
            {
                // The join token is a secret (one-time, but still): the report shows where it goes, not what it is.
                log.AddLine("setup", CommandLog.Quote(_net.Exec(i, [.. argv.TakeWhile(static a => a != "--token")])) + (i > 0 ? " --token \"$TOKEN\"" : ""));
            }

            MeshProcess agent = MeshProcess.Start(_net.Exec(i, [.. argv]), Log("agent-" + NodeName(i)), new CommandLog(), "setup");
            processes.Add(agent);
            string socket = Path.Combine(AgentDir(i), "admin.sock");
            await MeshBenchRunner.WaitAsync(() => Task.FromResult(File.Exists(socket) || agent.HasExited), $"agent {NodeName(i)}", token).ConfigureAwait(false);
            if (agent.HasExited)
            {
                throw new InvalidOperationException($"agent {NodeName(i)} exited: {agent.Tail()}");
            }
        }

        string[] members = [options.BeemeshPath, "members", "--agent", AgentDir(0)];
        log.Add("setup", members);
        await MeshBenchRunner.WaitAsync(async () =>
        {
            ProcessResult listed = await ProcessRunner.RunAsync(members, TimeSpan.FromSeconds(20), token).ConfigureAwait(false);
            return listed.StandardOutput.Split('\n').Count(static l => l.Contains(" alive ", StringComparison.Ordinal)) == options.Nodes;
        }, "every node alive in the first node's members", token).ConfigureAwait(false);
        _results.MeshFormedMs = clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>Every path once per round, in the same order each round.</summary>
    private async Task ThroughputAsync(HaproxyPair haproxy, CancellationToken token)
    {
        int seconds = options.Seconds;
        string s = Port(seconds);
        string server = ServerAddress;
        (string Path, string[] Argv)[] runs =
        [
            (OverlayMeshReport.Direct, _net.Exec(Client, "iperf3", "-c", server, "-p", Port(HostIperfPort), "-t", s, "-J")),
            (OverlayMeshReport.Haproxy, _net.Exec(Client, "iperf3", "-c", "127.0.0.1", "-p", Port(haproxy.Fronts[0]), "-t", s, "-J")),
            (OverlayMeshReport.GuestDirect, Guest(null, "iperf3", "-c", server, "-p", Port(PublishedIperfPort), "-t", s, "-J")),
            (OverlayMeshReport.HaproxyGuests, Guest(null, "iperf3", "-c", "10.0.2.2", "-p", Port(haproxy.Fronts[2]), "-t", s, "-J")),
            (OverlayMeshReport.Mesh, Guest("web", "iperf3", "-c", "api.default", "-p", Port(IperfPort), "-t", s, "-J")),
            (OverlayMeshReport.MeshQuic, Guest("webq", ["iperf3", "-c", "api.default", "-p", Port(IperfPort), "-t", s, "-J"], resolver: true, quic: true)),
        ];
        for (int round = 1; round <= options.Rounds; round++)
        {
            foreach ((string path, string[] argv) in runs)
            {
                if (path == OverlayMeshReport.MeshQuic && _results.QuicSkipped is not null)
                {
                    continue;
                }

                _results.AddThroughput(path, await _clients.IperfGbpsAsync(Round(path, round), argv, seconds, round == 1 ? log : new CommandLog(), token).ConfigureAwait(false));
            }
        }
    }

    /// <summary>Every path once per round, in the same order each round.</summary>
    private async Task LatencyAsync(HaproxyPair haproxy, CancellationToken token)
    {
        string s = Port(options.Seconds);
        string rate = Port(OverlayMeshBenchOptions.RequestRate);
        const string step = RateClient.StepName;
        string server = ServerAddress;
        (string Path, string[] Argv)[] runs =
        [
            (OverlayMeshReport.Direct, _net.Exec(Client, _self, "rate-client", server, Port(HostEchoPort), s, rate)),
            (OverlayMeshReport.Haproxy, _net.Exec(Client, _self, "rate-client", "127.0.0.1", Port(haproxy.Fronts[1]), s, rate)),
            (OverlayMeshReport.GuestDirect, Guest(null, _self, "rate-client", server, Port(PublishedEchoPort), s, rate)),
            (OverlayMeshReport.HaproxyGuests, Guest(null, _self, "rate-client", "10.0.2.2", Port(haproxy.Fronts[3]), s, rate)),
            (OverlayMeshReport.Mesh, Guest("web", _self, "rate-client", "api.default", Port(EchoPort), s, rate)),
            (OverlayMeshReport.MeshQuic, Guest("webq", [_self, "rate-client", "api.default", Port(EchoPort), s, rate], resolver: true, quic: true)),
        ];
        for (int round = 1; round <= options.Rounds; round++)
        {
            foreach ((string path, string[] argv) in runs)
            {
                if (path == OverlayMeshReport.MeshQuic && _results.QuicSkipped is not null)
                {
                    continue;
                }

                _results.AddLatency(path, await _clients.StepAsync("latency", Round(path, round), argv, step, round == 1 ? log : new CommandLog(), token).ConfigureAwait(false));
            }
        }
    }

    /// <summary>
    /// The QUIC rows count only if they went over QUIC. The guests have left by now, so their sidecars'
    /// counters sit under <c>workload="(departed)"</c>: node A's outbound connections summed over every
    /// workload must include at least one QUIC connection per QUIC run and no fallback, and node B's
    /// QUIC endpoint must have routed at least that many streams.
    /// </summary>
    private async Task CheckQuicUsedAsync(AdminSocketClient clientAdmin, AdminSocketClient serverAdmin, CancellationToken token)
    {
        string client = await clientAdmin.MetricsAsync(token).ConfigureAwait(false);
        string server = await serverAdmin.MetricsAsync(token).ConfigureAwait(false);
        int runs = 2 * options.Rounds;
        long quic = Sum(client, "beemesh_mesh_tunnel_client_connections_total{", "transport=\"quic\"");
        long tcp = Sum(client, "beemesh_mesh_tunnel_client_connections_total{", "transport=\"tcp\"");
        long fallbacks = Sum(client, "beemesh_mesh_quic_fallbacks_total{", "");
        long routed = Sum(server, "beemesh_agent_quic_tunnel_total{", "reason=\"routed\"");
        long tcpRouted = Sum(server, "beemesh_agent_tunnel_connections_total{", "reason=\"routed\"");
        _results.Notes.Add(Inv($"transport check (/metrics of both nodes after the runs, {runs} QUIC run(s)): node A's tunnel connections, all workloads: quic {quic}, tcp {tcp}, QUIC fallbacks {fallbacks}; node B routed {routed} QUIC stream(s) and {tcpRouted} TCP connection(s)"));
        if (quic < runs || routed < runs || fallbacks != 0)
        {
            _results.QuicSkipped = "not measured: the QUIC rows did not run over QUIC (see the notes)";
            _results.ThroughputGbps.Remove(OverlayMeshReport.MeshQuic);
            _results.Latency.Remove(OverlayMeshReport.MeshQuic);
        }

        static long Sum(string metrics, string family, string label)
        {
            long total = 0;
            foreach (string line in metrics.Split('\n'))
            {
                int space = line.LastIndexOf(' ');
                if (line.StartsWith(family, StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal) && space > 0
                    && long.TryParse(line[(space + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out long value))
                {
                    total += value;
                }
            }

            return total;
        }
    }

    private static string Inv(FormattableString text) => FormattableString.Invariant(text);

    private string Round(string path, int round) => options.Rounds == 1 ? path : $"{path}, round {round}";

    /// <summary>
    /// Start-to-first-call samples. Without the mesh: a prober in the client node's namespace calls
    /// the server node's address while a plain echo server starts there. Through the mesh: a
    /// <c>beemesh run --name caller</c> prober on the client node calls <c>svcK.default</c> (a name
    /// no workload had before) while <c>beemesh run --name svcK</c> starts on the server node; the
    /// harness also notes when each agent first resolves the name.
    /// </summary>
    private async Task FirstCallsAsync(AdminSocketClient clientAdmin, AdminSocketClient serverAdmin, CancellationToken token)
    {
        for (int k = 1; k <= options.Samples; k++)
        {
            progress.WriteLine($"overlay-mesh-bench: first call, no mesh, sample {k}");
            _results.DirectFirstCalls.Add(await FirstCallAsync(
                _net.Exec(Client, _self, "first-call-client", ServerAddress, Port(DirectFirstCallPort), "60"),
                _net.Exec(Server, _self, "echo-server", "0.0.0.0", Port(DirectFirstCallPort)),
                null, null, null, k == 1, token).ConfigureAwait(false));
        }

        for (int k = 1; k <= options.Samples; k++)
        {
            progress.WriteLine($"overlay-mesh-bench: first call through the mesh, sample {k}");
            _results.MeshFirstCalls.Add(await MeshFirstCallAsync("svc" + Port(k), resolver: true, k == 1, clientAdmin, serverAdmin, token).ConfigureAwait(false));
        }

        for (int k = 1; k <= NoResolverSamples; k++)
        {
            progress.WriteLine($"overlay-mesh-bench: first call through the mesh, no resolver on the client node, sample {k}");
            _results.NoResolverFirstCalls.Add(await MeshFirstCallAsync("bare" + Port(k), resolver: false, k == 1, clientAdmin, serverAdmin, token).ConfigureAwait(false));
        }
    }

    private Task<FirstCallSample> MeshFirstCallAsync(string name, bool resolver, bool logCommands, AdminSocketClient clientAdmin, AdminSocketClient serverAdmin, CancellationToken token) =>
        FirstCallAsync(
            Guest("caller", [_self, "first-call-client", name + ".default", Port(EchoPort), "60"], resolver),
            _net.Exec(Server, options.BeemeshPath, "run", "--agent", AgentDir(Server), "--name", name, "--port", Port(EchoPort), "--", _self, "echo-server", "0.0.0.0", Port(EchoPort)),
            name + ".default", serverAdmin, clientAdmin, logCommands, token);

    private async Task<FirstCallSample> FirstCallAsync(string[] prober, string[] server, string? meshName, AdminSocketClient? serverAdmin, AdminSocketClient? clientAdmin, bool logCommands, CancellationToken token)
    {
        CommandLog commands = logCommands ? log : new CommandLog();
        await using MeshProcess probe = MeshProcess.Start(prober, Log("first-call-client"), commands, "first call", marker: FirstCallClient.OkLine, watch: [FirstCallClient.ResolvedLine]);
        await MeshBenchRunner.WaitAsync(() => Task.FromResult(probe.Output.Contains(FirstCallClient.ProbingLine, StringComparison.Ordinal) || probe.HasExited), "the prober's first try", token).ConfigureAwait(false);
        if (probe.HasExited)
        {
            _results.Notes.Add($"first call: the prober exited before probing ({probe.Tail()})");
            return new FirstCallSample(null, null, null, null);
        }

        long start = Stopwatch.GetTimestamp();
        await using MeshProcess started = MeshProcess.Start(server, Log("first-call-server"), commands, "first call", marker: "echo-server listening");
        using var stopWatching = CancellationTokenSource.CreateLinkedTokenSource(token);
        Task<long?> registered = serverAdmin is null ? Task.FromResult<long?>(null) : FirstResolvedAsync(serverAdmin, meshName!, stopWatching.Token);
        Task<long?> route = clientAdmin is null ? Task.FromResult<long?>(null) : FirstResolvedAsync(clientAdmin, meshName!, stopWatching.Token);
        try
        {
            await probe.Marker.WaitAsync(TimeSpan.FromSeconds(60), token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _results.Notes.Add($"first call{(meshName is null ? "" : " to " + meshName)}: no success within 60 s ({probe.Tail()}; server: {started.Tail()})");
        }

        await stopWatching.CancelAsync().ConfigureAwait(false);
        if (meshName is not null)
        {
            string[] failures = [.. probe.Output.Split('\n').Where(static l => l.StartsWith(FirstCallClient.FailLine, StringComparison.Ordinal))
                .Select(static l => l[FirstCallClient.FailLine.Length..].Trim())];
            string ok = probe.Output.Split('\n').FirstOrDefault(static l => l.StartsWith(FirstCallClient.OkLine, StringComparison.Ordinal))?.Trim() ?? "no success";
            _results.Notes.Add($"first call to {meshName}, the prober's view (its own clock starts at its first try): {string.Join("; ", failures.Prepend("failing").Append(ok))}");
        }

        return new FirstCallSample(
            Since(start, started.MarkerTimestamp),
            Since(start, await registered.ConfigureAwait(false)),
            Since(start, await route.ConfigureAwait(false)),
            Since(start, probe.MarkerTimestamp),
            meshName is null ? null : Since(start, probe.SeenAt(FirstCallClient.ResolvedLine)));
    }

    /// <summary>The timestamp at which the agent first resolved <paramref name="name"/>, asking every 10 ms; null when stopped first.</summary>
    private static async Task<long?> FirstResolvedAsync(AdminSocketClient admin, string name, CancellationToken token)
    {
        try
        {
            while (!await admin.ResolvesAsync(name, token).ConfigureAwait(false))
            {
                await Task.Delay(10, token).ConfigureAwait(false);
            }

            return Stopwatch.GetTimestamp();
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private static double? Since(long start, long? at) => at is { } t && t > 0 ? Stopwatch.GetElapsedTime(start, t).TotalMilliseconds : null;

    private async Task<MeshProcess> StartMarkedAsync(string[] argv, string name, string marker, CancellationToken token)
    {
        MeshProcess process = MeshProcess.Start(argv, Log(name), log, "setup", marker: marker);
        try
        {
            await process.Marker.WaitAsync(TimeSpan.FromSeconds(30), token).ConfigureAwait(false);
            return process;
        }
        catch (TimeoutException)
        {
            string tail = process.Tail();
            await process.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException($"{name} did not start: {tail}");
        }
    }

    private async Task WaitListeningAsync(int node, int port, CancellationToken token)
    {
        string[] argv = ["ss", "-N", _net.Names[node], "-ltnH"];
        await MeshBenchRunner.WaitAsync(async () =>
            (await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(10), token).ConfigureAwait(false)).StandardOutput.Contains($":{port} ", StringComparison.Ordinal),
            $"port {port} on node {NodeName(node)}", token).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>beemesh run</c> on the client node: a plain guest, or the named workload <paramref name="name"/>
    /// of the client node's agent. Its DNS upstream is the node's resolver unless <paramref name="resolver"/> is false.
    /// Its sidecar's tunnel runs over TCP (<c>BEEMESH_TUNNEL_QUIC=off</c>) unless <paramref name="quic"/>,
    /// so the rows before QUIC measure the same path with or without libmsquic.
    /// </summary>
    private string[] Guest(string? name, string[] command, bool resolver = true, bool quic = false)
    {
        var argv = new List<string> { "env" };
        if (resolver)
        {
            argv.Add($"BEEMESH_DNS_UPSTREAM=127.0.0.1:{ResolverPort}");
        }

        if (!quic)
        {
            argv.Add("BEEMESH_TUNNEL_QUIC=off");
        }

        argv.AddRange([options.BeemeshPath, "run"]);
        if (name is not null)
        {
            argv.AddRange(["--agent", AgentDir(Client), "--name", name]);
        }

        argv.Add("--");
        argv.AddRange(command);
        return _net.Exec(Client, [.. argv]);
    }

    private string[] Guest(string? name, params string[] command) => Guest(name, command, resolver: true);

    private string AgentDir(int node) => Path.Combine(_work, NodeName(node));

    private static string NodeName(int node) => "n" + Port(node + 1);

    private string Log(string name) => Path.Combine(_work, name + ".log");

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static string LoadAverage()
    {
        try
        {
            string[] fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{fields[0]} / {fields[1]} / {fields[2]}";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
