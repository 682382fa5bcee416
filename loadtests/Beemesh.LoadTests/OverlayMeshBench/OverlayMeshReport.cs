using System.Text;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.MeshBench;
using Beemesh.LoadTests.Scenarios;
using static Beemesh.LoadTests.MeshBench.ReportFormat;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>Renders an overlay-mesh-bench run as Markdown: the verdict against haproxy, the tables, then every command that ran.</summary>
internal static class OverlayMeshReport
{
    public const string Direct = "direct, node A -> node B (no stack)";
    public const string Haproxy = "haproxy mTLS pair, A -> B (no stack)";
    public const string GuestDirect = "direct guest -> guest, A -> B (-p)";
    public const string HaproxyGuests = "haproxy mTLS pair between guests, A -> B";
    public const string Mesh = "beemesh tunnel, web@A -> api@B";
    public const string MeshQuic = "beemesh tunnel over QUIC, webq@A -> api@B";

    /// <summary>
    /// The same hops without the proxy: haproxy without stacks against the plain kernel path; the
    /// tunnel and haproxy between guests (both cross a guest's stack on each node) against the
    /// plain guest-to-guest path through a published port.
    /// </summary>
    public static string? BaselineOf(string path) => path switch
    {
        Haproxy => Direct,
        HaproxyGuests or Mesh or MeshQuic => GuestDirect,
        _ => null,
    };

    public static string Build(MachineInfo machine, OverlayMeshBenchOptions options, IReadOnlyList<string> args, OverlayMeshResults r, CommandLog log)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Beemesh across nodes: tunnel vs a haproxy mutual-TLS pair");
        sb.AppendLine();
        if (options.Quick || options.Seconds < 10 || options.Rounds < 3)
        {
            sb.AppendLine(Inv($"**Short run ({options.Seconds} s measurements, {options.Rounds} round(s), {options.Samples} first-call samples): indicative numbers only.**"));
            sb.AppendLine();
        }

        sb.AppendLine(Inv($"Command: `beemesh-loadtests {string.Join(' ', args)}` (or `scripts/bench-overlay-mesh`)  "));
        sb.AppendLine(Inv($"Machine: {machine.Processors} CPUs, {machine.Cpu}, kernel {machine.Kernel}, .NET {machine.DotNet}, {machine.Date}.  "));
        sb.AppendLine(Inv($"Load average (1 / 5 / 15 min): {r.LoadBefore} at the start, {(r.LoadAfter.Length > 0 ? r.LoadAfter : "not read (the run stopped early)")} at the end. The machine is shared with other work: expect noise."));
        if (options.BusyLoops > 0)
        {
            sb.AppendLine(Inv($"Load: {options.BusyLoops} busy loops (`yes > /dev/null`, normal priority) ran beside the whole run."));
        }

        sb.AppendLine();
        sb.AppendLine(Inv($"Topology: {options.Nodes} network namespaces standing for {options.Nodes} machines, each with a veth on one bridge (10.98.0.0/24) and its own loopback; node A (the first, 10.98.0.1) runs the clients, node B (the last, {BridgedNodes.Address(options.Nodes - 1)}) the servers. ") +
            Inv($"Each node runs `beemesh agent`; the first creates the trust domain and the others join it with one-time tokens from `beemesh token create`. All {options.Nodes} nodes saw each other alive {Num(r.MeshFormedMs / 1000, "0.0")} s after the first agent started. ") +
            "Paths, all from node A to node B: " +
            "**direct (no stack)** = a host process in A's namespace -> B's address -> a host process in B's namespace: the kernel path over the veths. " +
            "**haproxy mTLS pair (no stack)** = client -> haproxy in A (TCP mode, on A's 127.0.0.1, originates TLS 1.3 with a client certificate) -> B's address -> haproxy in B (terminates TLS 1.3, requires the client certificate) -> the server on B's 127.0.0.1; a throwaway ECDSA P-256 CA from openssl, as `scripts/bench-mesh` uses. " +
            "**direct guest -> guest** = a plain `beemesh run` guest on A -> B's address -> a port published with `-p` by a plain guest on B: one stack on each node, no proxy. " +
            "**haproxy mTLS pair between guests** = a plain guest on A -> 10.0.2.2 (A's 127.0.0.1) -> the haproxy pair -> the port published by B's plain guest: the same stack hops as the tunnel, plus the haproxy pair. " +
            "**beemesh tunnel** = `beemesh run --name web` on A calls `api.default` by name -> web's sidecar -> TLS 1.3 with SVIDs to node B's tunnel port (routed by SNI, not terminated by the agent) -> api's sidecar -> api's guest; every `beemesh run` of the client node except webq has `BEEMESH_TUNNEL_QUIC=off`, so this is TLS over TCP whether or not libmsquic is present. " +
            "**beemesh tunnel over QUIC** = the same from `beemesh run --name webq`, whose sidecar holds a QUIC connection to node B's QUIC endpoint (UDP 15008, its workload SVID against B's node SVID) and runs the same end-to-end TLS to api's sidecar in one QUIC stream, which B's agent relays without terminating; measured only where libmsquic loads, and checked afterwards against both nodes' `/metrics` (see the notes). " +
            "The fair proxy-to-proxy comparison is beemesh vs haproxy between guests; \"added\" figures are against the row's baseline (the same hops without the proxy).");
        sb.AppendLine();

        Summary(sb, r);
        Throughput(sb, options, r);
        Latency(sb, options, r);
        FirstCalls(sb, options, r);

        log.AppendReportTail(sb, r.Notes, "Temp paths and namespace names differ per run; `ip netns exec NS` runs a command on a node. Guests reach their node's 127.0.0.1 as 10.0.2.2.");
        return sb.ToString();
    }

    /// <summary>The aim of the overlay: at or below a haproxy mTLS pair in the same topology.</summary>
    private static void Summary(StringBuilder sb, OverlayMeshResults r)
    {
        sb.AppendLine("## Against the aim: at or below a haproxy mTLS pair between the same guests");
        sb.AppendLine();
        sb.AppendLine("| measure | beemesh tunnel | haproxy between guests | beemesh / haproxy | met |");
        sb.AppendLine("|---|---:|---:|---:|---|");
        double? meshGbps = Gbps(r, Mesh);
        double? haproxyGbps = Gbps(r, HaproxyGuests);
        sb.AppendLine(Inv($"| throughput, Gbit/s (higher is better) | {Num(meshGbps, "0.00")} | {Num(haproxyGbps, "0.00")} | {Ratio(meshGbps, haproxyGbps)} | {Met(meshGbps, haproxyGbps, higherIsBetter: true)} |"));
        LatencyStats? baseline = Median(r, GuestDirect);
        LatencyStats? mesh = Median(r, Mesh);
        LatencyStats? haproxy = Median(r, HaproxyGuests);
        foreach ((string label, Func<LatencyStats, double> pick) in new (string, Func<LatencyStats, double>)[] { ("p50", static l => l.P50Us), ("p99", static l => l.P99Us) })
        {
            double? m = mesh is null || baseline is null ? null : pick(mesh) - pick(baseline);
            double? h = haproxy is null || baseline is null ? null : pick(haproxy) - pick(baseline);
            sb.AppendLine(Inv($"| added {label} at {OverlayMeshBenchOptions.RequestRate} req/s, µs (lower is better) | {Signed(m)} | {Signed(h)} | {(m > 0 && h > 0 ? Ratio(m, h) : "-")} | {Met(m, h, higherIsBetter: false)} |"));
        }

        List<double> meshFirst = Sorted(r.MeshFirstCalls, static s => s.FirstCallMs);
        List<double> directFirst = Sorted(r.DirectFirstCalls, static s => s.FirstCallMs);
        sb.AppendLine(Inv($"| workload start on B to first call from A, p50 ms | {(meshFirst.Count > 0 ? Pct(meshFirst, 50).ToString("0", System.Globalization.CultureInfo.InvariantCulture) : "failed")} | (static config: no discovery) | - | - |"));
        sb.AppendLine();
        sb.AppendLine(Inv($"A plain process started in B's namespace (no mesh, no stack) answers its first call from A after {(directFirst.Count > 0 ? Pct(directFirst, 50).ToString("0", System.Globalization.CultureInfo.InvariantCulture) : "-")} ms (p50): that is the floor of process start-up. haproxy has no counterpart of the start-to-first-call time: its backends are written into its configuration."));
        sb.AppendLine();
    }

    private static void Throughput(StringBuilder sb, OverlayMeshBenchOptions options, OverlayMeshResults r)
    {
        sb.AppendLine(Inv($"## 1. Throughput, one TCP stream (iperf3, {options.Seconds} s, {Rounds(options)})"));
        sb.AppendLine();
        sb.AppendLine("| path | Gbit/s (median) | rounds ok | range | baseline | vs baseline | vs haproxy between guests |");
        sb.AppendLine("|---|---:|---:|---|---|---:|---:|");
        double? haproxy = Gbps(r, HaproxyGuests);
        foreach ((string path, List<double> rounds) in r.ThroughputGbps)
        {
            string? baseline = BaselineOf(path);
            double? gbps = Gbps(r, path);
            double? b = baseline is null ? null : Gbps(r, baseline);
            sb.AppendLine(Inv($"| {path} | {Num(gbps, "0.00")} | {rounds.Count} | {Range(rounds, "0.00")} | {baseline ?? "-"} | {Ratio(gbps, b)} | {Ratio(gbps, haproxy)} |"));
        }

        if (r.QuicSkipped is { } why)
        {
            sb.AppendLine(Inv($"| {MeshQuic} | {why} | | | | | |"));
        }

        sb.AppendLine();
    }

    private static void Latency(StringBuilder sb, OverlayMeshBenchOptions options, OverlayMeshResults r)
    {
        sb.AppendLine(Inv($"## 2. Request/response latency at {OverlayMeshBenchOptions.RequestRate} req/s ({options.Seconds} s after 1 s warm-up, {Rounds(options)})"));
        sb.AppendLine();
        sb.AppendLine(RateClient.Method +
            "The client runs on node A where the path starts (a host process in A's namespace, or inside a guest on A); the echo server runs on node B (a host process, the plain published guest, or api's guest). " +
            "Each percentile is the median over the rounds of that round's percentile (requests and failures are summed); the ranges give the lowest and highest round. Added = the percentile minus the same percentile of the row's baseline.");
        sb.AppendLine();
        sb.AppendLine("| path | requests | failed | p50 µs | p50 range | p99 µs | p99 range | p99.9 µs | baseline | added p50 | added p99 | added p99.9 |");
        sb.AppendLine("|---|---:|---:|---:|---|---:|---|---:|---|---:|---:|---:|");
        foreach ((string path, List<StepStats> rounds) in r.Latency)
        {
            if (Median(r, path) is not { } l)
            {
                sb.AppendLine(Inv($"| {path} | failed | | | | | | | | | | |"));
                continue;
            }

            string? baseline = BaselineOf(path);
            LatencyStats? d = baseline is null ? null : Median(r, baseline);
            List<double> p50 = [.. rounds.Select(static s => s.Latency.P50Us)];
            List<double> p99 = [.. rounds.Select(static s => s.Latency.P99Us)];
            sb.AppendLine(Inv($"| {path} | {rounds.Sum(static s => s.RequestCount)} | {rounds.Sum(static s => s.FailCount)} | {l.P50Us:0} | {Range(p50, "0")} | {l.P99Us:0} | {Range(p99, "0")} | {l.P999Us:0} | {baseline ?? "-"} | {Added(l.P50Us, d?.P50Us)} | {Added(l.P99Us, d?.P99Us)} | {Added(l.P999Us, d?.P999Us)} |"));
        }

        if (r.QuicSkipped is { } why)
        {
            sb.AppendLine(Inv($"| {MeshQuic} | {why} | | | | | | | | | | |"));
        }

        sb.AppendLine();
    }

    private static string Rounds(OverlayMeshBenchOptions options) =>
        options.Rounds == 1 ? "one round"
        : Inv($"median{(options.Rounds % 2 == 0 ? " (the lower middle value)" : "")} of {options.Rounds} rounds, the paths taking turns");

    /// <summary>The median throughput over the rounds of <paramref name="path"/> that succeeded, or null.</summary>
    internal static double? Gbps(OverlayMeshResults r, string path) =>
        r.ThroughputGbps.GetValueOrDefault(path) is { Count: > 0 } rounds ? Median(rounds) : null;

    /// <summary>Each percentile the median of the rounds' values, or null when no round succeeded.</summary>
    internal static LatencyStats? Median(OverlayMeshResults r, string path)
    {
        if (r.Latency.GetValueOrDefault(path) is not { Count: > 0 } rounds)
        {
            return null;
        }

        double M(Func<LatencyStats, double> pick) => Median([.. rounds.Select(s => pick(s.Latency))]);
        return new LatencyStats(M(static l => l.MinUs), M(static l => l.MeanUs), M(static l => l.P50Us), M(static l => l.P75Us),
            M(static l => l.P95Us), M(static l => l.P99Us), M(static l => l.P999Us), M(static l => l.MaxUs));
    }

    /// <summary>The middle value (the lower of the two middle ones for an even count).</summary>
    private static double Median(List<double> values)
    {
        List<double> sorted = [.. values.Order()];
        return Pct(sorted, 50);
    }

    private static string Range(List<double> values, string format) =>
        values.Count < 2 ? "-" : Inv($"{Num(values.Min(), format)}-{Num(values.Max(), format)}");

    private static void FirstCalls(StringBuilder sb, OverlayMeshBenchOptions options, OverlayMeshResults r)
    {
        sb.AppendLine(Inv($"## 3. Time from a workload's start on node B to the first successful call from node A ({options.Samples} samples each)"));
        sb.AppendLine();
        sb.AppendLine(Inv($"A prober on node A (`beemesh-loadtests first-call-client`) is already trying when the server starts: resolve the name, connect, send {RateClient.MessageBytes} bytes, read the echo; {FirstCallClient.RetryInterval.TotalMilliseconds:0} ms between failed tries, so a time can be late by up to that much. ") +
            "Through the mesh the prober runs as `beemesh run --name caller` and calls `svcK.default`, a name no workload held before; the clock starts when the harness starts `ip netns exec B beemesh run --agent B --name svcK --port 7000 -- beemesh-loadtests echo-server 0.0.0.0 7000` and the prober's success line ends it. " +
            "Along the way: *listening* = the echo server inside the new guest printed that it listens; *registered on B* and *route on A* = B's and A's agents first resolve the name (the harness asks each agent's admin API every 10 ms); *resolves in A's guest* = the prober's first successful name lookup (through its guest's resolver and the caller's mesh DNS); *first call* = the prober's first success. " +
            "Without the mesh the same prober in A's namespace calls B's address while a plain `beemesh-loadtests echo-server` starts in B's namespace. " +
            "The node namespaces have no route to the host's resolver, so node A gets one: `beemesh-loadtests nxdomain-server` on A's 127.0.0.1:5353, which answers every query with NXDOMAIN at once as a real resolver would for `svcK.default`, given to A's guests with `BEEMESH_DNS_UPSTREAM`. " +
            "The mesh DNS answers the names it knows and relays the others upstream, so until the route arrives the prober's queries go to that resolver. The last row leaves it out: a relayed query then gets no answer at all, and the guest's resolver (glibc) waits out its 5 s timeout before it asks again.");
        sb.AppendLine();
        sb.AppendLine("| path | samples ok | failed | listening p50 ms | registered on B p50 ms | route on A p50 ms | resolves in A's guest p50 ms | first call min ms | p50 ms | p90 ms | max ms |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        FirstCallRow(sb, "no mesh (plain server process in B)", r.DirectFirstCalls);
        FirstCallRow(sb, "beemesh, `beemesh run --name` on B, called by name from A", r.MeshFirstCalls);
        FirstCallRow(sb, "beemesh, the same with no resolver on node A", r.NoResolverFirstCalls);
        sb.AppendLine();
        if (r.MeshFirstCalls.Count > 0)
        {
            sb.AppendLine("Each sample through the mesh, ms from the start command:");
            sb.AppendLine();
            sb.AppendLine("| sample | listening | registered on B | route on A | resolves in A's guest | first call |");
            sb.AppendLine("|---:|---:|---:|---:|---:|---:|");
            for (int i = 0; i < r.MeshFirstCalls.Count; i++)
            {
                FirstCallSample s = r.MeshFirstCalls[i];
                sb.AppendLine(Inv($"| {i + 1} | {Ms(s.ListeningMs)} | {Ms(s.RegisteredMs)} | {Ms(s.RouteMs)} | {Ms(s.ResolvedMs)} | {Ms(s.FirstCallMs)} |"));
            }

            sb.AppendLine();
            sb.AppendLine(Inv($"Where the time goes (p50 over the samples of each gap): the route reaches A's agent {Gap(r.MeshFirstCalls, static s => s.RouteMs - s.RegisteredMs)} ms after B's agent has it; ") +
                Inv($"the name resolves in A's guest {Gap(r.MeshFirstCalls, static s => s.ResolvedMs - s.RouteMs)} ms after A's agent has it; ") +
                Inv($"the first call succeeds {Gap(r.MeshFirstCalls, static s => s.FirstCallMs - Math.Max(s.ListeningMs ?? double.NaN, s.ResolvedMs ?? double.NaN))} ms after both the server listens and the name resolves."));
            sb.AppendLine();
        }
    }

    /// <summary>The p50 of a per-sample difference over the samples that have both ends, or "-".</summary>
    private static string Gap(IReadOnlyList<FirstCallSample> samples, Func<FirstCallSample, double?> gap)
    {
        List<double> values = [.. samples.Select(gap).OfType<double>().Where(static v => !double.IsNaN(v))];
        values.Sort();
        return values.Count == 0 ? "-" : Inv($"{Pct(values, 50):0}");
    }

    private static void FirstCallRow(StringBuilder sb, string label, IReadOnlyList<FirstCallSample> samples)
    {
        List<double> first = Sorted(samples, static s => s.FirstCallMs);
        if (first.Count == 0)
        {
            sb.AppendLine(Inv($"| {label} | 0 | {samples.Count} | | | | | | | | |"));
            return;
        }

        sb.AppendLine(Inv($"| {label} | {first.Count} | {samples.Count - first.Count} | {P50(samples, static s => s.ListeningMs)} | {P50(samples, static s => s.RegisteredMs)} | {P50(samples, static s => s.RouteMs)} | {P50(samples, static s => s.ResolvedMs)} | {first[0]:0} | {Pct(first, 50):0} | {Pct(first, 90):0} | {first[^1]:0} |"));
    }

    private static string P50(IReadOnlyList<FirstCallSample> samples, Func<FirstCallSample, double?> pick)
    {
        List<double> values = Sorted(samples, pick);
        return values.Count == 0 ? "-" : Inv($"{Pct(values, 50):0}");
    }

    private static List<double> Sorted(IReadOnlyList<FirstCallSample> samples, Func<FirstCallSample, double?> pick)
    {
        List<double> values = [.. samples.Select(pick).OfType<double>()];
        values.Sort();
        return values;
    }

    private static string Ms(double? value) => value is { } v ? Inv($"{v:0}") : "-";

    private static string Signed(double? value) => value is { } v ? Added(v, 0) : "failed";

    /// <summary>"yes" when beemesh is at or better than haproxy, "no" otherwise, "-" when either is missing.</summary>
    internal static string Met(double? beemesh, double? haproxy, bool higherIsBetter) => (beemesh, haproxy) switch
    {
        ({ } m, { } h) => (higherIsBetter ? m >= h : m <= h) ? "yes" : "no",
        _ => "-",
    };
}
