using System.Globalization;
using System.Text;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.Scenarios;
using static Beemesh.LoadTests.MeshBench.ReportFormat;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>Renders a mesh-bench run as Markdown: tables, then every command that ran.</summary>
internal static class MeshReport
{
    public const string Loopback = "loopback (no stack)";
    public const string Direct = "direct (guest -> 10.0.2.2)";
    public const string Haproxy = "haproxy mTLS pair (host only)";
    public const string GuestDirect = "direct guest -> guest (-p)";
    public const string HaproxyGuests = "haproxy between guests";
    public const string Mesh = "beemesh tunnel (web -> api)";

    /// <summary>
    /// What each path is measured against: a path with stacks against the same hops without the
    /// proxy. The tunnel and haproxy-between-guests both cross two stacks (a guest's out, a
    /// guest's in), so their baseline is the plain guest-to-guest path through a port forward;
    /// the host-only paths compare with loopback.
    /// </summary>
    private static string? BaselineOf(string path) => path switch
    {
        Loopback => null,
        HaproxyGuests or Mesh => GuestDirect,
        _ => Loopback,
    };

    public static string Build(MachineInfo machine, MeshBenchOptions options, IReadOnlyList<string> args, MeshBenchResults r, CommandLog log)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Beemesh mesh benchmark");
        sb.AppendLine();
        if (options.Quick)
        {
            sb.AppendLine("**Quick run (3 s measurements, 20 revocations): indicative numbers only.**");
            sb.AppendLine();
        }

        sb.AppendLine(Inv($"Command: `beemesh-loadtests {string.Join(' ', args)}` (or `scripts/bench-mesh`)  "));
        sb.AppendLine(Inv($"Machine: {machine.Processors} CPUs, {machine.Cpu}, kernel {machine.Kernel}, .NET {machine.DotNet}, {machine.Date}. The machine is shared with other builds: expect noise."));
        if (options.BusyLoops > 0)
        {
            sb.AppendLine(Inv($"Load: {options.BusyLoops} busy loops (`yes > /dev/null`, normal priority) ran beside the whole run."));
        }

        sb.AppendLine();
        sb.AppendLine("Paths: **loopback** = host process to host 127.0.0.1, no stack. **direct** = a `beemesh run` guest (no mesh name) to the host's 127.0.0.1 via 10.0.2.2: one stack. " +
            "**haproxy (host only)** = client -> haproxy (TCP mode, originates TLS 1.3 with a client certificate) -> haproxy (terminates TLS, requires the client certificate) -> server, all host processes on 127.0.0.1, no stack; throwaway ECDSA P-256 CA from openssl. " +
            "**direct guest -> guest** = a client in a plain `beemesh run` guest -> 10.0.2.2 -> a port published with `-p` -> the same server inside another plain guest: two stacks, no proxy. " +
            "**haproxy between guests** = a client in a plain guest -> 10.0.2.2:haproxy front -> TLS -> haproxy back -> the published port -> the server in the other guest: the same two stack hops as the tunnel, plus the haproxy pair. " +
            "**beemesh** = guest `web` -> its sidecar -> HTTP/2 CONNECT over mutual TLS 1.3 with SVIDs -> `api`'s sidecar -> `api`'s guest, by name (`api`). " +
            "Each path is compared with its baseline: the tunnel and haproxy between guests with direct guest -> guest (same stack hops, no proxy), every other path with loopback. The fair proxy-to-proxy comparison is beemesh vs haproxy between guests.");
        sb.AppendLine();

        sb.AppendLine(Inv($"## 1. Throughput, one TCP stream (iperf3, {options.ThroughputSeconds} s)"));
        sb.AppendLine();
        sb.AppendLine("| path | Gbit/s | baseline | vs baseline | vs haproxy between guests |");
        sb.AppendLine("|---|---:|---|---:|---:|");
        double? haproxy = r.ThroughputGbps.GetValueOrDefault(HaproxyGuests);
        foreach ((string path, double? gbps) in r.ThroughputGbps)
        {
            string? baseline = BaselineOf(path);
            double? b = baseline is null ? null : r.ThroughputGbps.GetValueOrDefault(baseline);
            sb.AppendLine(Inv($"| {path} | {Num(gbps, "0.00")} | {baseline ?? "-"} | {Ratio(gbps, b)} | {Ratio(gbps, haproxy)} |"));
        }

        sb.AppendLine();
        sb.AppendLine(Inv($"## 2. Request/response latency at {MeshBenchOptions.RequestRate} req/s ({options.LatencySeconds} s, after 1 s warm-up)"));
        sb.AppendLine();
        sb.AppendLine(RateClient.Method +
            "The client runs where the path starts (on the host, or inside the guest through `beemesh run -- beemesh-loadtests rate-client ...`) and prints JSON stats. The echo server runs on the host (loopback, direct, haproxy host only), inside the plain published guest (guest -> guest, haproxy between guests) or inside `api`'s guest (beemesh). Added = p minus the same percentile of the row's baseline.");
        sb.AppendLine();
        sb.AppendLine("| path | requests | failed | p50 µs | p99 µs | p99.9 µs | max µs | baseline | added p50 | added p99 | added p99.9 |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
        foreach ((string path, StepStats? s) in r.Latency)
        {
            if (s is null)
            {
                sb.AppendLine(Inv($"| {path} | failed | | | | | | | | | |"));
                continue;
            }

            LatencyStats l = s.Latency;
            string? baseline = BaselineOf(path);
            LatencyStats? d = baseline is null ? null : r.Latency.GetValueOrDefault(baseline)?.Latency;
            sb.AppendLine(Inv($"| {path} | {s.RequestCount} | {s.FailCount} | {l.P50Us:0} | {l.P99Us:0} | {l.P999Us:0} | {l.MaxUs:0} | {baseline ?? "-"} | {Added(l.P50Us, d?.P50Us)} | {Added(l.P99Us, d?.P99Us)} | {Added(l.P999Us, d?.P999Us)} |"));
        }

        sb.AppendLine();
        sb.AppendLine(Inv($"## 3. New connections per second ({options.ConnectionSeconds} s, {MeshBenchOptions.ConnectionCopies} concurrent loops: connect, 1-byte round trip, close)"));
        sb.AppendLine();
        sb.AppendLine("| path | connections/s | failed | p50 µs | p99 µs |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach ((string path, StepStats? s) in r.Connections)
        {
            sb.AppendLine(s is null
                ? Inv($"| {path} | failed | | | |")
                : Inv($"| {path} | {s.Rps:0} | {s.FailCount} | {s.Latency.P50Us:0} | {s.Latency.P99Us:0} |"));
        }

        sb.AppendLine();
        sb.AppendLine("Every haproxy connection is a new TLS 1.3 handshake between the two haproxy processes (TCP mode does not pool). " +
            "Every beemesh connection is a new guest TCP flow and a new HTTP/2 stream; the TLS connection between the sidecars is pooled, so the handshake count is per sidecar run, not per flow. " +
            Inv($"TLS handshakes during the beemesh test: {r.MeshHandshakes}."));
        sb.AppendLine();

        sb.AppendLine("## 4. Idle sidecar memory");
        sb.AppendLine();
        sb.AppendLine(Inv($"VmRSS of the `beemesh run --name idle -- sleep 600` process (stack + sidecar, one NativeAOT executable), 2 s after it registered: **{Num(r.IdleSidecarRssKib / 1024.0, "0.0")} MiB**") +
            Inv($" (its guest `sleep`: {Num(r.IdleGuestRssKib / 1024.0, "0.0")} MiB, not included). ") +
            Inv($"Of that RSS, the executable's code mapped from its file is shared by every sidecar on the node: ") +
            Inv($"PSS **{Num(r.IdleSidecarPssKib / 1024.0, "0.0")} MiB**, private (unshared) **{Num(r.IdleSidecarPrivateKib / 1024.0, "0.0")} MiB** — the private figure is what one more sidecar costs."));
        sb.AppendLine();

        sb.AppendLine(Inv($"## 5. Revocation latency ({options.RevocationTries} tries)"));
        sb.AppendLine();
        sb.AppendLine("`web` holds a live stream (`ncat --recv-only api 9000`; `api`'s guest ticks every 50 ms); the harness POSTs a DENY for web to the agent's admin socket and measures, on the host, " +
            "from the POST returning to the `beemesh run --name web` process exiting (the stream's reset reaches ncat, ncat exits, the sidecar shuts down). Then it DELETEs the policy and starts a new stream.");
        sb.AppendLine();
        sb.AppendLine("| tries cut | not cut | min ms | p50 ms | p90 ms | p99 ms | max ms |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        List<double> ms = [.. r.RevocationMs];
        ms.Sort();
        sb.AppendLine(ms.Count == 0
            ? Inv($"| 0 | {r.RevocationFailures} | | | | | |")
            : Inv($"| {ms.Count} | {r.RevocationFailures} | {ms[0]:0.0} | {Pct(ms, 50):0.0} | {Pct(ms, 90):0.0} | {Pct(ms, 99):0.0} | {ms[^1]:0.0} |"));
        sb.AppendLine();

        log.AppendReportTail(sb, r.Notes, "Temp paths and ports differ per run. Guests reach the host's 127.0.0.1 as 10.0.2.2.");
        return sb.ToString();
    }
}
