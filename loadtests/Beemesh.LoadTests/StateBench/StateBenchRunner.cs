using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.MeshBench;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.StateBench;

/// <summary>
/// Runs the state measurements side by side, one target at a time (the others stopped): etcd's
/// three members, three <c>beemesh run --state statestore=strong</c> replicas, redis-server and one
/// <c>--state statestore=eventual</c> replica. The same driver (<c>kv-client</c>) measures each:
/// on the host against etcd and redis, inside the leading replica's (or the eventual replica's)
/// network namespace against the Dapr API there. Everything it starts is killed on the way out.
/// </summary>
internal sealed partial class StateBenchRunner(StateBenchOptions options, CommandLog log, TextWriter progress)
{
    private const string Ready = "kv-replica-ready";
    private readonly string _self = Environment.ProcessPath ?? Path.Combine(AppContext.BaseDirectory, "beemesh-loadtests");
    private readonly StateBenchResults _results = new();
    private readonly HashSet<string> _logged = [];
    private string _work = "";

    public async Task<StateBenchResults> RunAsync(CancellationToken token)
    {
        _results.LoadAtStart = File.ReadAllText("/proc/loadavg").Trim();
        _work = Directory.CreateTempSubdirectory("beemesh-statebench-").FullName;
        var running = new List<IAsyncDisposable>();
        try
        {
            await VersionsAsync(token).ConfigureAwait(false);
            // Every target is started first and stays up (idle while the others are measured), so
            // the rounds can take turns: order effects and load swings spread over all targets.
            var targets = new List<(string Name, string[] Driver)>();
            var traced = new List<(string Name, int Pid, string[] Driver)>();
            await EtcdAsync(running, targets, traced, token).ConfigureAwait(false);
            await StrongAsync(running, targets, traced, token).ConfigureAwait(false);
            await RedisAsync(running, targets, token).ConfigureAwait(false);
            await EventualAsync(running, targets, token).ConfigureAwait(false);
            var rounds = new Dictionary<string, List<(StepStats? Writes, StepStats? MixReads, StepStats? MixWrites)>>();
            for (int round = 0; round < options.Rounds; round++)
            {
                for (int i = 0; i < targets.Count; i++)
                {
                    (string name, string[] driver) = targets[(i + round) % targets.Count];
                    (rounds.TryGetValue(name, out var list) ? list : rounds[name] = []).Add(await MeasureAsync(name, driver, token).ConfigureAwait(false));
                }
            }

            foreach ((string name, var list) in rounds)
            {
                // The round with the median rate, per measurement (the whole row from one round).
                var byWrites = list[RoundChoice.MedianIndex([.. list.Select(static r => r.Writes?.Rps)])];
                var byMix = list[RoundChoice.MedianIndex([.. list.Select(static r => r.MixReads?.Rps)])];
                _results.Writes[name] = byWrites.Writes;
                _results.MixReads[name] = byMix.MixReads;
                _results.MixWrites[name] = byMix.MixWrites;
                if (list.Count > 1)
                {
                    _results.Ranges[name] = RoundChoice.Range([.. list.Select(static r => r.Writes?.Rps)]) + " writes/s (all writes), "
                        + RoundChoice.Range([.. list.Select(static r => r.MixReads?.Rps)]) + " reads/s (mix)";
                }
            }

            foreach ((string name, int pid, string[] driver) in traced)
            {
                await SyncsAsync(name, pid, driver, token).ConfigureAwait(false);
            }

            _results.LoadAtEnd = File.ReadAllText("/proc/loadavg").Trim();
            return _results;
        }
        finally
        {
            for (int i = running.Count - 1; i >= 0; i--)
            {
                await running[i].DisposeAsync().ConfigureAwait(false);
            }

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

    private async Task VersionsAsync(CancellationToken token)
    {
        async Task One(string name, string[] argv)
        {
            try
            {
                ProcessResult run = await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(10), token).ConfigureAwait(false);
                _results.Versions[name] = (run.StandardOutput + run.StandardError).Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim();
            }
            catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or IndexOutOfRangeException or TimeoutException)
            {
                _results.Versions[name] = "not found";
            }
        }

        await One("etcd", ["etcd", "--version"]).ConfigureAwait(false);
        await One("redis-server", ["redis-server", "--version"]).ConfigureAwait(false);
    }

    private async Task EtcdAsync(List<IAsyncDisposable> running, List<(string, string[])> targets, List<(string, int, string[])> traced, CancellationToken token)
    {
        string dir = Path.Combine(_work, "etcd");
        Directory.CreateDirectory(dir);
        EtcdCluster etcd;
        try
        {
            etcd = await EtcdCluster.StartAsync(dir, log, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            _results.Notes.Add($"etcd: not measured ({ex.Message}; apt-get install etcd-server)");
            return;
        }

        running.Add(etcd);
        string leader = await etcd.LeaderUrlAsync(token).ConfigureAwait(false);
        _results.Placement[StateBenchResults.Etcd] = $"host process -> the leading member's client URL ({leader}); members on 127.0.0.1, peer traffic plain HTTP";
        string[] driver = [_self, "kv-client", KvTargets.Etcd, leader, "-"];
        targets.Add((StateBenchResults.Etcd, driver));
        traced.Add((StateBenchResults.Etcd, await MemberPidAsync(leader, token).ConfigureAwait(false), driver));
    }

    // The etcd member listening on the leader's client port.
    private static async Task<int> MemberPidAsync(string url, CancellationToken token)
    {
        string port = url[(url.LastIndexOf(':') + 1)..];
        ProcessResult ss = await ProcessRunner.RunAsync(["ss", "-Htlnp", "sport = :" + port], TimeSpan.FromSeconds(10), token).ConfigureAwait(false);
        Match m = PidPattern().Match(ss.StandardOutput);
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    private async Task StrongAsync(List<IAsyncDisposable> running, List<(string, string[])> targets, List<(string, int, string[])> traced, CancellationToken token)
    {
        string agentDir = Path.Combine(_work, "agent");
        Directory.CreateDirectory(agentDir);
        MeshProcess agent = MeshProcess.Start([options.BeemeshPath, "agent", "--state-dir", agentDir, "--tunnel-port", "0"], Log("agent"), log, "beemesh");
        running.Add(agent);
        var replicas = new List<MeshProcess>();
        try
        {
            await MeshBenchRunner.WaitAsync(() => Task.FromResult(File.Exists(Path.Combine(agentDir, "admin.sock"))), "the agent's admin socket", token).ConfigureAwait(false);
            for (int i = 0; i < 3; i++)
            {
                // One at a time, as replicas join a group; stopped in reverse order at the end.
                MeshProcess replica = MeshProcess.Start(Replica(agentDir, "kv", "strong"), Log(Inv($"kv-{i}")), log, "beemesh", marker: Ready);
                replicas.Add(replica);
                running.Add(replica);
                await replica.Marker.WaitAsync(TimeSpan.FromSeconds(60), token).ConfigureAwait(false);
            }

            (MeshProcess leader, int index) = LeaderOf(replicas);
            int guest = GuestPid(leader.Pid);
            _results.Placement[StateBenchResults.Strong] = $"inside replica {index + 1}'s network namespace (the leader) -> its Dapr HTTP API on 127.0.0.1:3500; replicas' Raft on 127.0.0.1, mutual TLS 1.3";
            _results.Placement[StateBenchResults.StrongGrpc] = "the same, its Dapr gRPC API on 127.0.0.1:50001";
            string[] driver = InNamespace(guest, KvTargets.DaprHttp, "http://127.0.0.1:3500");
            targets.Add((StateBenchResults.Strong, driver));
            targets.Add((StateBenchResults.StrongGrpc, InNamespace(guest, KvTargets.DaprGrpc, "http://127.0.0.1:50001")));
            traced.Add((StateBenchResults.Strong, leader.Pid, driver));
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            _results.Notes.Add($"strong: not measured ({ex.Message}; {string.Join(" / ", replicas.Select(r => r.Tail(2)))})");
        }
    }

    private async Task RedisAsync(List<IAsyncDisposable> running, List<(string, string[])> targets, CancellationToken token)
    {
        RedisServer redis;
        try
        {
            redis = await RedisServer.StartAsync(_work, log, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or System.ComponentModel.Win32Exception)
        {
            _results.Notes.Add($"redis: not measured ({ex.Message}; apt-get install redis-server)");
            return;
        }

        running.Add(redis);
        _results.Placement[StateBenchResults.Redis] = Inv($"host process -> 127.0.0.1:{redis.Port}");
        targets.Add((StateBenchResults.Redis, [_self, "kv-client", KvTargets.Resp, Inv($"127.0.0.1:{redis.Port}"), "-"]));
    }

    private async Task EventualAsync(List<IAsyncDisposable> running, List<(string, string[])> targets, CancellationToken token)
    {
        string agentDir = Path.Combine(_work, "agent-eventual");
        Directory.CreateDirectory(agentDir);
        MeshProcess agent = MeshProcess.Start([options.BeemeshPath, "agent", "--state-dir", agentDir, "--tunnel-port", "0"], Log("agent-eventual"), log, "beemesh");
        running.Add(agent);
        MeshProcess? replica = null;
        try
        {
            await MeshBenchRunner.WaitAsync(() => Task.FromResult(File.Exists(Path.Combine(agentDir, "admin.sock"))), "the agent's admin socket", token).ConfigureAwait(false);
            replica = MeshProcess.Start(Replica(agentDir, "kvev", "eventual"), Log("kvev"), log, "beemesh", marker: Ready);
            running.Add(replica);
            await replica.Marker.WaitAsync(TimeSpan.FromSeconds(60), token).ConfigureAwait(false);
            int guest = GuestPid(replica.Pid);
            _results.Placement[StateBenchResults.Eventual] = "inside the replica's network namespace -> its Dapr HTTP API on 127.0.0.1:3500";
            _results.Placement[StateBenchResults.EventualGrpc] = "the same, its Dapr gRPC API on 127.0.0.1:50001";
            targets.Add((StateBenchResults.Eventual, InNamespace(guest, KvTargets.DaprHttp, "http://127.0.0.1:3500")));
            targets.Add((StateBenchResults.EventualGrpc, InNamespace(guest, KvTargets.DaprGrpc, "http://127.0.0.1:50001")));
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            _results.Notes.Add($"eventual: not measured ({ex.Message}; {replica?.Tail(2)})");
        }
    }

    // The driver inside the network namespace of the guest process (the workload's loopback).
    private string[] InNamespace(int guest, string kind, string url) =>
        ["nsenter", "-t", guest.ToString(CultureInfo.InvariantCulture), "-n", "--", _self, "kv-client", kind, url, "statestore"];

    private string[] Replica(string agentDir, string name, string consistency) =>
        [options.BeemeshPath, "run", "--agent", agentDir, "--name", name, "--state", "statestore=" + consistency, "--",
         "/bin/sh", "-c", "echo " + Ready + "; exec sleep 100000"];

    // The all-writes run, then the mixed run, with the same driver arguments.
    private async Task<(StepStats? Writes, StepStats? MixReads, StepStats? MixWrites)> MeasureAsync(string target, string[] driver, CancellationToken token)
    {
        string seconds = options.Seconds.ToString(CultureInfo.InvariantCulture);
        string clients = options.Clients.ToString(CultureInfo.InvariantCulture);
        ScenarioStats? writes = await DriverAsync(target, "writes", [.. driver, seconds, clients, "0"], token).ConfigureAwait(false);
        ScenarioStats? mix = await DriverAsync(target, "mix", [.. driver, seconds, clients, StateBenchOptions.ReadPercent.ToString(CultureInfo.InvariantCulture)], token).ConfigureAwait(false);
        return (Step(writes, KvLoad.WriteStep, target, "writes"), Step(mix, KvLoad.ReadStep, target, "mix reads"), Step(mix, KvLoad.WriteStep, target, "mix writes"));
    }

    private StepStats? Step(ScenarioStats? stats, string step, string target, string what)
    {
        if (stats is null)
        {
            return null;
        }

        StepStats? found = stats.Steps.FirstOrDefault(s => s.Name == step);
        if (found is { FailCount: > 0 })
        {
            _results.Notes.Add($"{target} {what}: {found.FailCount} of {found.RequestCount} failed (first: {found.FirstFailure})");
        }

        return found;
    }

    private async Task<ScenarioStats?> DriverAsync(string target, string scope, string[] argv, CancellationToken token)
    {
        progress.WriteLine($"state-bench: {scope}, {target}");
        if (_logged.Add(CommandLog.Quote(argv)))
        {
            log.Add(scope, argv);
        }

        ProcessResult run = await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(options.Seconds + 120), token).ConfigureAwait(false);
        string? line = run.StandardOutput.Split('\n').LastOrDefault(static l => l.TrimStart().StartsWith('{'));
        try
        {
            return JsonSerializer.Deserialize(line ?? "", ScenarioStatsJsonContext.Default.ScenarioStats) ?? throw new JsonException("no stats");
        }
        catch (JsonException)
        {
            _results.Notes.Add($"{target} {scope}: failed (exit {run.ExitCode}; {BenchClients.Last(run.StandardError)})");
            return null;
        }
    }

    /// <summary>
    /// Counts the disk syncs of <paramref name="pid"/> (all its threads, strace -f -c) while one
    /// client writes for 2 s: syncs per acknowledged write says what "durable" costs each target.
    /// </summary>
    private async Task SyncsAsync(string target, int pid, string[] driver, CancellationToken token)
    {
        if (pid <= 0)
        {
            _results.SyncsPerWrite[target] = null;
            return;
        }

        string summary = Path.Combine(_work, "strace-" + pid.ToString(CultureInfo.InvariantCulture) + ".txt");
        string[] strace = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync,msync,sync_file_range", "-o", summary, "-p", pid.ToString(CultureInfo.InvariantCulture)];
        log.Add("syncs", strace);
        var tracer = Process.Start(ProcessRunner.StartInfo(strace));
        if (tracer is null)
        {
            return;
        }

        ChildProcesses.Track(tracer);
        try
        {
            tracer.StandardInput.Close();
            await Task.Delay(1000, token).ConfigureAwait(false);
            // No warm-up: every write the driver makes is counted.
            ScenarioStats? traced = await DriverAsync(target, "syncs", [.. driver, "2", "1", "0", "0"], token).ConfigureAwait(false);
            await ProcessRunner.RunAsync(["kill", "-INT", tracer.Id.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10), token).ConfigureAwait(false);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(token);
            limit.CancelAfter(TimeSpan.FromSeconds(10));
            await tracer.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            long total = traced?.Steps.FirstOrDefault(s => s.Name == KvLoad.WriteStep)?.OkCount ?? 0;
            IReadOnlyDictionary<string, long> syncs = StraceSummary.BySyscall(File.Exists(summary) ? await File.ReadAllTextAsync(summary, token).ConfigureAwait(false) : "");
            _results.SyncsPerWrite[target] = total > 0 ? (double)syncs.Values.Sum() / total : null;
            _results.SyncCalls[target] = total > 0
                ? string.Join(", ", syncs.Select(s => Inv($"{s.Key} {(double)s.Value / total:0.00}"))) + Inv($"; {total} writes")
                : "no write completed";
        }
        finally
        {
            if (!tracer.HasExited)
            {
                tracer.Kill();
            }

            ChildProcesses.Forget(tracer);
            tracer.Dispose();
        }
    }

    /// <summary>The leader among <paramref name="replicas"/>: the one that printed the highest term it leads.</summary>
    private static (MeshProcess Leader, int Index) LeaderOf(List<MeshProcess> replicas)
    {
        long best = -1;
        int index = -1;
        for (int i = 0; i < replicas.Count; i++)
        {
            foreach (Match m in LeadsPattern().Matches(replicas[i].Output))
            {
                long term = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                if (term > best)
                {
                    best = term;
                    index = i;
                }
            }
        }

        return index >= 0 ? (replicas[index], index) : throw new InvalidOperationException("no replica said it leads");
    }

    /// <summary>The guest's <c>sleep</c> under a <c>beemesh run</c> process: a process inside the workload's network namespace.</summary>
    private static int GuestPid(int runPid)
    {
        var frontier = new Queue<int>([runPid]);
        var children = new Dictionary<int, List<int>>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                (children.TryGetValue(parent, out List<int>? list) ? list : children[parent] = []).Add(pid);
            }
            catch (IOException)
            {
            }
        }

        while (frontier.Count > 0)
        {
            int pid = frontier.Dequeue();
            foreach (int child in children.GetValueOrDefault(pid) ?? [])
            {
                try
                {
                    if (File.ReadAllText($"/proc/{child}/comm").Trim() == "sleep")
                    {
                        return child;
                    }
                }
                catch (IOException)
                {
                }

                frontier.Enqueue(child);
            }
        }

        throw new InvalidOperationException($"no guest process under {runPid}");
    }

    private string Log(string name) => Path.Combine(_work, name + ".log");

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"leads \(term (\d+)\)")]
    private static partial Regex LeadsPattern();

    [GeneratedRegex(@"pid=(\d+)")]
    private static partial Regex PidPattern();
}
