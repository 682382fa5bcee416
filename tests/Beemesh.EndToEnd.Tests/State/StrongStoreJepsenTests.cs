using System.Diagnostics;
using System.Globalization;
using Beemesh.EndToEnd.Tests.Support;
using Beemesh.Linearizability;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.State;

/// <summary>
/// The strong store under faults, Jepsen-style: three replicas of one workload
/// (<c>beemesh run --name ledger --state statestore=strong</c>) on this node, five clients (two on
/// each of two replicas, one on the third; each replica's command is <c>Beemesh.Linearizability
/// client</c>, talking to its own replica's Dapr HTTP API) doing random reads, writes of unique
/// values, compare-and-sets on the last ETag they read, creates and deletes on four keys, while a
/// schedule drawn from a seed (<c>BEEMESH_JEPSEN_SEED</c>, default 1) runs these faults one after
/// another:
/// <list type="number">
/// <item>kill -9 of the leader (sidecar and clients), restarted from its own log a moment later;</item>
/// <item>a partition: every TCP link between one replica's sidecar and the others' cut and then
/// healed, with iptables rules in a chain of the test's own: packets to the replica's Raft and
/// forward ports, and packets from its sidecar (matched by its cgroup v2, which the sidecar is
/// started in, so its own sockets carry it) to the other replicas' ports, are dropped;</item>
/// <item>a pause: SIGSTOP of one replica's sidecar process (its clients keep calling it), then SIGCONT;</item>
/// <item>kill -9 of a replica drawn from the seed, restarted.</item>
/// </list>
/// Every operation is journalled by its client before it is sent and when it ends, so one cut short
/// by a kill or a timeout is in the history with an unknown outcome. At the end every client reads
/// every key once more through its own replica. Then: the checker (Wing-Gong with memoization, per
/// key) must accept the whole history, final reads included, which is what makes an acknowledged
/// write that was lost, or a stale read, fail it; the final reads of all replicas must agree and
/// name a value some write wrote; and, as a control that the history really reaches the checker,
/// the same history with one read changed to return a value overwritten before the read began must
/// be rejected. A history that fails is kept in the temp directory for a checker test fixture.
/// </summary>
[Collection(NamespacesCollection.Name)]
public sealed class StrongStoreJepsenTests(ITestOutputHelper output) : MeshAgentTest
{
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(60);
    private static readonly string[] Keys = ["a", "b", "c", "d"];

    private static string ClientPath => Path.Combine(AppContext.BaseDirectory, "Beemesh.Linearizability.dll");

    [SkippableFact]
    public async Task Clients_of_three_strong_replicas_see_a_linearizable_history_through_kills_a_partition_and_a_pause()
    {
        BeemeshEnvironment.RequireReady("dotnet", "iptables");
        Skip.If(Agent is null, "the agent could not be started");
        Assert.True(File.Exists(ClientPath), $"{ClientPath} is missing");
        string? cgroupRoot = File.ReadLines("/proc/self/mounts").Select(l => l.Split(' ')).FirstOrDefault(f => f.Length > 2 && f[2] == "cgroup2")?[1];
        Skip.If(cgroupRoot is null, "no cgroup v2 hierarchy is mounted (the partition matches the sidecar's sockets by cgroup)");
        int seed = int.TryParse(Environment.GetEnvironmentVariable("BEEMESH_JEPSEN_SEED"), NumberStyles.None, CultureInfo.InvariantCulture, out int s) ? s : 1;
        var random = new Random(seed);
        output.WriteLine($"seed {seed}");

        using var processes = new BeemeshProcesses(output);
        string dir = Directory.CreateTempSubdirectory("bm-jepsen-").FullName;
        string group = $"beemesh-jepsen-{Environment.ProcessId}";
        string chain = $"BM-JEPSEN-{Environment.ProcessId}";
        var partition = new LoopbackPartition(chain);
        bool keep = false;
        var replicas = new Dictionary<string, Process>();
        var incarnations = new Dictionary<string, int>();
        var clients = new Dictionary<string, int[]> { ["r1"] = [1, 2], ["r2"] = [3, 4], ["r3"] = [5] };
        try
        {
            foreach (string name in clients.Keys)
            {
                Directory.CreateDirectory(Path.Combine(cgroupRoot!, group, name));
            }

            partition.Create();

            // A replica: its sidecar starts in its cgroup (so every socket it opens carries it), its
            // command is the replica's clients, journalling to a file of this incarnation's.
            async Task StartAsync(string name)
            {
                int incarnation = incarnations[name] = incarnations.GetValueOrDefault(name, -1) + 1;
                string[] clientArgs = [
                    "dotnet", ClientPath, "client", "--url", "http://127.0.0.1:3500/v1.0/state/statestore", "--keys", string.Join(',', Keys),
                    .. clients[name].SelectMany(p => new[] { "--process", (p + 10 * incarnation).ToString(CultureInfo.InvariantCulture) }),
                    "--seed", seed.ToString(CultureInfo.InvariantCulture), "--journal", Path.Combine(dir, $"{name}-{incarnation}.journal"),
                    "--stop", Path.Combine(dir, "stop"), "--final", Path.Combine(dir, "final"), "--pause-ms", "20", "--timeout-ms", "10000"];
                string cgroup = Path.Combine(cgroupRoot!, group, name, "cgroup.procs");
                Process replica = processes.StartProgram("/bin/sh", [
                    "-c", "echo $$ > \"$0\" && shift && exec \"$@\"", cgroup, "-", BeemeshEnvironment.BeemeshPath,
                    "run", .. Agent!.Workload("ledger"), "--state", "statestore=strong", "--", .. clientArgs]);
                replicas[name] = replica;
                Assert.True(
                    await processes.WaitForLineAsync(replica, "beemesh run: strong store statestore: replica ", Cap),
                    $"{name} (incarnation {incarnation}) did not start its store{(replica.HasExited ? $", exit {replica.ExitCode}" : string.Empty)}:\n{string.Join('\n', processes.Lines(replica))}");
            }

            string RaftPort(string name) => processes.Lines(replicas[name])
                .First(l => l.StartsWith("beemesh run: strong store statestore: replica ", StringComparison.Ordinal)).Split(':').Last().Split(' ')[0];

            // Every port a replica serves (Raft and forward), from the endpoints files its store keeps.
            string[] Ports(string name)
            {
                string raft = RaftPort(name);
                foreach (string file in Directory.EnumerateFiles(Path.Combine(Agent!.Directory, "state"), "endpoints", SearchOption.AllDirectories))
                {
                    string[] ports = [.. File.ReadAllLines(file).Select(l => l.Split(':').Last())];
                    if (ports.Contains(raft))
                    {
                        return ports;
                    }
                }

                throw new InvalidOperationException($"no endpoints file names {name}'s Raft port {raft}");
            }

            static long Term(string line) => long.Parse(line[(line.LastIndexOf("(term ", StringComparison.Ordinal) + 6)..^1], CultureInfo.InvariantCulture);
            string? Leader() => replicas
                .Select(r => (r.Key, Term: processes.Lines(r.Value).Where(l => l.Contains(" leads (term ", StringComparison.Ordinal)).Select(Term).DefaultIfEmpty(-1).Max()))
                .Where(r => r.Term >= 0).OrderByDescending(r => r.Term).Select(r => r.Key).FirstOrDefault();

            async Task KillAsync(string name)
            {
                output.WriteLine($"fault: kill -9 {name} (leader: {Leader()})");
                ProcessTree.Kill(replicas[name]);
                await replicas[name].WaitForExitAsync();
            }

            Task RunFor(int minMs, int maxMs) => Task.Delay(random.Next(minMs, maxMs));

            foreach (string name in clients.Keys)
            {
                await StartAsync(name);
            }

            var watch = Stopwatch.StartNew();
            await RunFor(2000, 4000);

            // 1. kill -9 the leader, restart it.
            string? leader = Leader();
            Assert.True(leader is not null, "no replica said it leads");
            await KillAsync(leader);
            await RunFor(1000, 2000);
            await StartAsync(leader);
            await RunFor(2000, 4000);

            // 2. partition one replica from the others, heal.
            string cut = random.Next(2) == 0 ? Leader() ?? "r1" : clients.Keys.ElementAt(random.Next(3));
            output.WriteLine($"fault: partition {cut} (leader: {Leader()})");
            long isolated = HistoryRecorder.Now;
            partition.Isolate(Path.Combine(group, cut), Ports(cut), [.. clients.Keys.Where(k => k != cut).SelectMany(Ports)]);
            await RunFor(3000, 5000);
            long dropped = partition.DroppedPackets();
            output.WriteLine(partition.Listing());
            partition.Heal();
            long healed = HistoryRecorder.Now;
            output.WriteLine($"heal: {dropped} packets dropped (leader: {Leader()})");
            Assert.True(dropped > 0, "the partition dropped no packets: the rules did not match the replicas' links");
            await RunFor(2000, 4000);

            // 3. pause one replica's sidecar, resume it.
            string paused = random.Next(2) == 0 ? Leader() ?? "r2" : clients.Keys.ElementAt(random.Next(3));
            output.WriteLine($"fault: SIGSTOP {paused} (leader: {Leader()})");
            Signal(replicas[paused].Id, "STOP");
            long stopped = HistoryRecorder.Now;
            await RunFor(2000, 4000);
            long resumed = HistoryRecorder.Now;
            Signal(replicas[paused].Id, "CONT");
            await RunFor(2000, 4000);

            // 4. kill -9 any replica, restart it.
            string victim = clients.Keys.ElementAt(random.Next(3));
            await KillAsync(victim);
            await RunFor(500, 1500);
            await StartAsync(victim);
            await RunFor(2000, 4000);
            output.WriteLine($"faults done after {watch.Elapsed.TotalSeconds:0.0} s of clients running");

            // Stop the clients, then read every key through every replica.
            await File.WriteAllTextAsync(Path.Combine(dir, "stop"), "");
            foreach ((string name, Process replica) in replicas)
            {
                Assert.True(await processes.WaitForLineAsync(replica, "client stopped", Cap), $"{name}'s clients did not stop");
            }

            await File.WriteAllTextAsync(Path.Combine(dir, "final"), "");
            var finals = new Dictionary<string, string[]>();
            foreach ((string name, Process replica) in replicas)
            {
                Assert.True(await processes.WaitForLineAsync(replica, "client done", Cap), $"{name}'s clients did not read the final values");
                finals[name] = [.. processes.Lines(replica).Where(l => l.StartsWith("final ", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
                Assert.Equal(Keys.Length, finals[name].Length);
                Assert.DoesNotContain(processes.Lines(replica), l => l.StartsWith("anomaly ", StringComparison.Ordinal));
            }

            Assert.Equal(finals["r1"], finals["r2"]);
            Assert.Equal(finals["r1"], finals["r3"]);

            // The whole history: every journal of every incarnation.
            var history = Directory.EnumerateFiles(dir, "*.journal").Order(StringComparer.Ordinal)
                .SelectMany(ClientJournal.ReadFile).Select((op, i) => op with { Id = i + 1 }).ToList();
            HistoryFile.WriteFile(Path.Combine(dir, "history.jsonl"), history);
            output.WriteLine(
                $"history: {history.Count} operations: {history.Count(o => o.Outcome == OperationOutcome.Ok)} ok, " +
                $"{history.Count(o => o.Outcome == OperationOutcome.Mismatch)} mismatch, {history.Count(o => o.Outcome == OperationOutcome.Failed)} fail, " +
                $"{history.Count(o => o.Outcome == OperationOutcome.Unknown)} unknown; " +
                string.Join(", ", Enum.GetValues<OperationKind>().Select(k => $"{history.Count(o => o.Kind == k)} {k}")));
            string Replica(int process) => clients.First(c => c.Value.Contains(((process - 1) % 10) + 1)).Key;
            string Served(long from, long to) => string.Join(", ", clients.Keys.Select(r =>
                $"{r} {history.Count(o => o.Outcome == OperationOutcome.Ok && o.CallTime > from && o.ReturnTime < to && Replica(o.Process) == r)}"));
            output.WriteLine($"acknowledged while {cut} was cut off: {Served(isolated, healed)}; while {paused} was paused: {Served(stopped, resumed)}");
            keep = true;
            var checking = Stopwatch.StartNew();
            CheckResult result = LinearizabilityChecker.Check(history, new CheckerOptions { MaxDegreeOfParallelism = 2 });
            output.WriteLine($"checker: {result.Describe()} in {checking.Elapsed.TotalMilliseconds:0} ms");
            Assert.True(result.IsLinearizable, $"{result.Describe()}\nhistory kept in {dir}/history.jsonl");

            // Each final value is one a write wrote, acknowledged or of unknown outcome.
            foreach (string line in finals["r1"])
            {
                string value = line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..];
                if (value != "absent")
                {
                    string written = value[..value.LastIndexOf('@')];
                    Assert.Contains(history, o => o.Kind is not (OperationKind.Read or OperationKind.Delete) && o.Value == written
                        && o.Outcome is OperationOutcome.Ok or OperationOutcome.Unknown);
                }
            }

            // Control: one read changed to return a value overwritten before it began is rejected.
            List<KvOperation> stale = StaleRead(history);
            CheckResult control = LinearizabilityChecker.Check(stale, new CheckerOptions { MaxDegreeOfParallelism = 2 });
            output.WriteLine($"control: {control.Describe()}");
            Assert.Equal(CheckOutcome.NotLinearizable, control.Outcome);
            keep = false;
        }
        finally
        {
            partition.Dispose();
            foreach (Process replica in replicas.Values)
            {
                if (!replica.HasExited)
                {
                    Signal(replica.Id, "CONT");
                    ProcessTree.Kill(replica);
                    await replica.WaitForExitAsync();
                }
            }

            // A cgroup can be removed once the last of its processes (the killed trees' stragglers) is gone.
            foreach (string name in clients.Keys)
            {
                for (int attempt = 0; cgroupRoot is not null && Directory.Exists(Path.Combine(cgroupRoot, group, name)) && attempt < 50; attempt++)
                {
                    try
                    {
                        Directory.Delete(Path.Combine(cgroupRoot, group, name));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        await Task.Delay(100);
                    }
                }
            }

            try
            {
                Directory.Delete(Path.Combine(cgroupRoot ?? "/nonexistent", group));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }

            if (!keep)
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    /// <summary>
    /// <paramref name="history"/> with one acknowledged read of key K changed to return the value of an
    /// acknowledged write W of K, where another acknowledged write of K was called after W returned
    /// and returned before the read was called: W's value (values are unique) can no longer be read.
    /// </summary>
    private static List<KvOperation> StaleRead(List<KvOperation> history)
    {
        foreach (IGrouping<string, KvOperation> key in history.GroupBy(o => o.Key))
        {
            KvOperation[] writes = [.. key.Where(o => o.Outcome == OperationOutcome.Ok && o.Kind is OperationKind.Write or OperationKind.CompareAndSet or OperationKind.Create).OrderBy(o => o.ReturnTime)];
            foreach (KvOperation read in key.Where(o => o.Kind == OperationKind.Read && o.Outcome == OperationOutcome.Ok).OrderBy(o => o.CallTime))
            {
                KvOperation? later = writes.LastOrDefault(w => w.ReturnTime < read.CallTime);
                KvOperation? old = later is null ? null : writes.LastOrDefault(w => w.ReturnTime < later.CallTime);
                if (old is not null && old.Value != read.Value)
                {
                    return [.. history.Select(o => o.Id == read.Id ? o with { Value = old.Value, ResultEtag = null } : o)];
                }
            }
        }

        throw new InvalidOperationException("the history has no read after two writes one after the other: too short to make a stale read of");
    }

    private static void Signal(int pid, string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    /// <summary>
    /// iptables rules, in a chain of their own jumped to from OUTPUT, that cut one replica's TCP links
    /// on loopback: packets to its ports, and packets from its cgroup to the other replicas' ports.
    /// </summary>
    private sealed class LoopbackPartition(string chain) : IDisposable
    {
        private bool _created;

        public void Create()
        {
            Iptables("-N", chain);
            _created = true;
            Iptables("-I", "OUTPUT", "-o", "lo", "-j", chain);
        }

        public void Isolate(string cgroup, string[] ownPorts, string[] otherPorts)
        {
            Iptables("-A", chain, "-p", "tcp", "-m", "multiport", "--dports", string.Join(',', ownPorts), "-j", "DROP");
            Iptables("-A", chain, "-p", "tcp", "-m", "cgroup", "--path", cgroup, "-m", "multiport", "--dports", string.Join(',', otherPorts), "-j", "DROP");
        }

        /// <summary>The chain's rules with their counters.</summary>
        public string Listing() => Iptables("-L", chain, "-v", "-x", "-n");

        /// <summary>Packets the chain's rules dropped so far.</summary>
        public long DroppedPackets()
        {
            string listing = Iptables("-L", chain, "-v", "-x", "-n");
            return listing.Split('\n').Where(l => l.Contains("DROP", StringComparison.Ordinal))
                .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture));
        }

        public void Heal() => Iptables("-F", chain);

        public void Dispose()
        {
            if (_created)
            {
                Iptables(check: false, "-D", "OUTPUT", "-o", "lo", "-j", chain);
                Iptables(check: false, "-F", chain);
                Iptables(check: false, "-X", chain);
                _created = false;
            }
        }

        private static string Iptables(params string[] args) => Iptables(check: true, args);

        private static string Iptables(bool check, params string[] args)
        {
            var psi = new ProcessStartInfo("iptables") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            psi.ArgumentList.Add("-w");
            using Process p = Process.Start(psi)!;
            string text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (check && p.ExitCode != 0)
            {
                throw new InvalidOperationException($"iptables {string.Join(' ', args)}: {text}");
            }

            return text;
        }
    }
}
