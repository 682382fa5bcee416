using System.Text;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.Scenarios;
using static Beemesh.LoadTests.MeshBench.ReportFormat;

namespace Beemesh.LoadTests.StateBench;

/// <summary>Renders a state-bench run as Markdown: each Beemesh store next to its reference, with ratios, then every command that ran.</summary>
internal static class StateReport
{
    /// <summary>One aim of the benchmark and whether this run met it.</summary>
    internal sealed record Aim(string Text, bool? Met, string Evidence);

    /// <summary>
    /// The aims: strong writes/s at or above etcd's, at an equal or better write p99 (both over
    /// HTTP/1.1 JSON); eventual read p99 within 2x redis's (over Dapr HTTP and over Dapr gRPC).
    /// Null <see cref="Aim.Met"/> when a side was not measured.
    /// </summary>
    internal static IReadOnlyList<Aim> Aims(StateBenchResults r)
    {
        StepStats? strong = r.Writes.GetValueOrDefault(StateBenchResults.Strong);
        StepStats? etcd = r.Writes.GetValueOrDefault(StateBenchResults.Etcd);
        StepStats? redis = r.MixReads.GetValueOrDefault(StateBenchResults.Redis);
        Aim WithinTwiceRedis(string target, string how)
        {
            StepStats? eventual = r.MixReads.GetValueOrDefault(target);
            return new Aim($"eventual read p99 within 2x redis's ({how})",
                eventual is null || redis is null ? null : eventual.Latency.P99Us <= 2 * redis.Latency.P99Us,
                eventual is null || redis is null ? "not measured" : Inv($"{eventual.Latency.P99Us:0} vs {redis.Latency.P99Us:0} µs ({Ratio(eventual.Latency.P99Us, redis.Latency.P99Us)})"));
        }

        return
        [
            new Aim("strong writes/s at or above etcd's",
                strong is null || etcd is null ? null : strong.Rps >= etcd.Rps,
                strong is null || etcd is null ? "not measured" : Inv($"{strong.Rps:0} vs {etcd.Rps:0} writes/s ({Ratio(strong.Rps, etcd.Rps)})")),
            new Aim("strong write p99 equal to or better than etcd's",
                strong is null || etcd is null ? null : strong.Latency.P99Us <= etcd.Latency.P99Us,
                strong is null || etcd is null ? "not measured" : Inv($"{Ms(strong.Latency.P99Us)} vs {Ms(etcd.Latency.P99Us)} ms ({Ratio(strong.Latency.P99Us, etcd.Latency.P99Us)})")),
            WithinTwiceRedis(StateBenchResults.Eventual, "Dapr HTTP"),
            WithinTwiceRedis(StateBenchResults.EventualGrpc, "Dapr gRPC"),
        ];
    }

    public static string Build(MachineInfo machine, StateBenchOptions options, IReadOnlyList<string> args, StateBenchResults r, CommandLog log)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Beemesh state benchmark");
        sb.AppendLine();
        if (options.Quick)
        {
            sb.AppendLine(Inv($"**Quick run ({options.Seconds} s measurements) on a machine shared with other builds and tests: indicative numbers only, to be regenerated without `--quick` on a quiet machine.**"));
            sb.AppendLine();
        }

        sb.AppendLine(Inv($"Command: `beemesh-loadtests {string.Join(' ', args)}` (or `scripts/bench-state`)  "));
        sb.AppendLine(Inv($"Machine: {machine.Processors} CPUs, {machine.Cpu}, kernel {machine.Kernel}, .NET {machine.DotNet}, {machine.Date}; /proc/loadavg at start {r.LoadAtStart}, at the end {r.LoadAtEnd}.  "));
        sb.AppendLine("Versions: " + string.Join("; ", r.Versions.Select(static v => $"{v.Key}: {v.Value}")) + "; Beemesh strong stores on DotNext.Net.Cluster 6.12 (`RaftCluster`, `WriteAheadLog`).");
        sb.AppendLine();
        sb.AppendLine(Inv($"Method: the same driver (`beemesh-loadtests kv-client`) for every target: {options.Clients} clients in a closed loop (each sends its next request when the last is answered), one kept-alive connection each, {options.Seconds} s after a 1 s warm-up. ") +
            Inv($"Values are {KvLoad.ValueBytes} bytes (a JSON string, the same bytes stored everywhere); each client writes its own {KvLoad.KeysPerClient} keys in turn. ") +
            Inv($"Two runs per target: **all writes**, then a **mix** of {StateBenchOptions.ReadPercent}% reads / {100 - StateBenchOptions.ReadPercent}% writes on the client's own keys (written before measuring). ") +
            "The HTTP targets use the same client (.NET `HttpClient`, HTTP/1.1, one connection per client): Beemesh through Dapr's state API (`POST /v1.0/state/statestore` with `[{key,value}]`, `GET /v1.0/state/statestore/KEY`), etcd through its v3 JSON gateway (`POST /v3/kv/put`, `POST /v3/kv/range`, base64 keys and values; ranges are linearizable, etcd's default; Beemesh strong reads are linearizable too, answered by the leader after a read barrier). Redis gets `SET`/`GET` over RESP on one connection per client. The Dapr gRPC rows call SaveState/GetState (the generated client in Dapr.Protos, one HTTP/2 cleartext connection per client); the aims compare the HTTP rows with etcd (the same protocol shape), the gRPC rows are for reference. " +
            Inv($"Every target is started first and stays up; one is measured at a time while the others idle, in {options.Rounds} round(s) in which the targets take turns in a rotated order. Each table row is the round with the median rate (all-writes tables: by writes/s; mix tables: by reads/s)."));
        sb.AppendLine();
        sb.AppendLine("Where the clients run: " + string.Join("; ", r.Placement.Select(static p => $"**{p.Key}**: {p.Value}")) + ".");
        sb.AppendLine();
        sb.AppendLine("Durability: **etcd** fsyncs its write-ahead log (fdatasync) before a member acknowledges an entry (its default; `--unsafe-no-fsync` not set), so a put is on the disk of a majority when it returns. " +
            "**Beemesh strong**: DotNext's `WriteAheadLog` with its defaults, `FlushOnCommit = true` and `FlushInterval = 0`: appended entries are flushed to disk before `CommitAsync` returns and the commit index checkpoint is written with them (the log is memory-mapped; a flush is `msync(MS_SYNC)` of the dirty pages, which on Linux syncs that file range like fdatasync), so an acknowledged write is on the disk of a majority too. " +
            "**Beemesh eventual** and **redis** (`--save \"\" --appendonly no`) keep data in memory only. " +
            "All data directories are in one temp directory on the same ext4 file system (a virtio disk).");
        sb.AppendLine();
        sb.AppendLine("Disk syncs per acknowledged write, counted with `strace -f -c -e trace=fsync,fdatasync,msync,sync_file_range` on the leading member's process while one client writes for 2 s (syncs while idle during those ~4 s included; only the leader is traced, the followers sync too):");
        sb.AppendLine();
        foreach ((string target, double? perWrite) in r.SyncsPerWrite)
        {
            sb.AppendLine($"- {target}: **{Num(perWrite, "0.00")}** ({r.SyncCalls.GetValueOrDefault(target, "not traced")})");
        }

        sb.AppendLine();

        if (r.Ranges.Count > 0)
        {
            sb.AppendLine("Rates over the rounds (min-max):");
            sb.AppendLine();
            foreach ((string target, string range) in r.Ranges)
            {
                sb.AppendLine($"- {target}: {range}");
            }

            sb.AppendLine();
        }

        sb.AppendLine("## Aims");
        sb.AppendLine();
        sb.AppendLine("| aim | met | this run |");
        sb.AppendLine("|---|---|---|");
        foreach (Aim aim in Aims(r))
        {
            sb.AppendLine($"| {aim.Text} | {(aim.Met is { } met ? (met ? "yes" : "no") : "-")} | {aim.Evidence} |");
        }

        sb.AppendLine();
        Section(sb, "1. Strong: all writes", r.Writes, StateBenchResults.Etcd, [StateBenchResults.Strong, StateBenchResults.StrongGrpc, StateBenchResults.Etcd], "writes", ms: true);
        Section(sb, Inv($"2. Strong: reads in the {StateBenchOptions.ReadPercent}% read mix"), r.MixReads, StateBenchResults.Etcd, [StateBenchResults.Strong, StateBenchResults.StrongGrpc, StateBenchResults.Etcd], "reads", ms: true);
        Section(sb, Inv($"3. Strong: writes in the {StateBenchOptions.ReadPercent}% read mix"), r.MixWrites, StateBenchResults.Etcd, [StateBenchResults.Strong, StateBenchResults.StrongGrpc, StateBenchResults.Etcd], "writes", ms: true);
        Section(sb, "4. Eventual: all writes", r.Writes, StateBenchResults.Redis, [StateBenchResults.Eventual, StateBenchResults.EventualGrpc, StateBenchResults.Redis], "writes", ms: false);
        Section(sb, Inv($"5. Eventual: reads in the {StateBenchOptions.ReadPercent}% read mix"), r.MixReads, StateBenchResults.Redis, [StateBenchResults.Eventual, StateBenchResults.EventualGrpc, StateBenchResults.Redis], "reads", ms: false);
        Section(sb, Inv($"6. Eventual: writes in the {StateBenchOptions.ReadPercent}% read mix"), r.MixWrites, StateBenchResults.Redis, [StateBenchResults.Eventual, StateBenchResults.EventualGrpc, StateBenchResults.Redis], "writes", ms: false);

        log.AppendReportTail(sb, r.Notes, "Temp paths, ports and pids differ per run. The last arguments of `kv-client` are SECONDS CLIENTS READ_PERCENT [WARMUP_SECONDS].");
        return sb.ToString();
    }

    /// <summary>One table: each target's rate and latency percentiles, with its rate and p99 as ratios of the reference's.</summary>
    internal static void Section(StringBuilder sb, string title, IReadOnlyDictionary<string, StepStats?> stats, string reference, IReadOnlyList<string> targets, string unit, bool ms)
    {
        string u = ms ? "ms" : "µs";
        sb.AppendLine("## " + title);
        sb.AppendLine();
        sb.AppendLine($"| target | {unit} | failed | {unit}/s | p50 {u} | p99 {u} | p99.9 {u} | max {u} | {unit}/s vs {Short(reference)} | p99 vs {Short(reference)} |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        StepStats? baseline = stats.GetValueOrDefault(reference);
        foreach (string target in targets)
        {
            StepStats? s = stats.GetValueOrDefault(target);
            if (s is null)
            {
                sb.AppendLine($"| {target} | failed | | | | | | | | |");
                continue;
            }

            string L(double us) => ms ? Ms(us) : us.ToString("0", System.Globalization.CultureInfo.InvariantCulture);
            sb.AppendLine(Inv($"| {target} | {s.RequestCount} | {s.FailCount} | {s.Rps:0} | {L(s.Latency.P50Us)} | {L(s.Latency.P99Us)} | {L(s.Latency.P999Us)} | {L(s.Latency.MaxUs)} | {Ratio(s.Rps, baseline?.Rps)} | {Ratio(s.Latency.P99Us, baseline?.Latency.P99Us)} |"));
        }

        sb.AppendLine();
    }

    private static string Short(string target) => target[..target.IndexOf(' ', StringComparison.Ordinal)];

    private static string Ms(double us) => (us / 1000).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);
}
