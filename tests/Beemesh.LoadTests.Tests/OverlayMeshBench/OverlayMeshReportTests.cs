using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.OverlayMeshBench;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.Tests.OverlayMeshBench;

/// <summary>The generated overlay-mesh report: ratios against haproxy, added latency against the named baseline, first-call summaries.</summary>
public sealed class OverlayMeshReportTests
{
    private static readonly MachineInfo Machine = new(2, "test cpu", "6.1", "2026-01-01 00:00 UTC", "10.0.0");

    private static StepStats Stats(double p50, double p99, long failed = 0) =>
        new("request", 1000, 1000 - failed, failed, 1000, 32000, new LatencyStats(p50 / 2, p50, p50, p50, p99, p99, p99 * 2, p99 * 3), failed > 0 ? "boom" : null);

    private static OverlayMeshResults Results()
    {
        var r = new OverlayMeshResults { LoadBefore = "1.00 / 2.00 / 3.00", LoadAfter = "4.00 / 5.00 / 6.00", MeshFormedMs = 2500 };
        r.AddThroughput(OverlayMeshReport.Direct, 8);
        r.AddThroughput(OverlayMeshReport.Haproxy, 4);
        r.AddThroughput(OverlayMeshReport.GuestDirect, 5);
        r.AddThroughput(OverlayMeshReport.HaproxyGuests, 2);
        // Three rounds of the tunnel: the median (3) is reported, with the range.
        r.AddThroughput(OverlayMeshReport.Mesh, 1);
        r.AddThroughput(OverlayMeshReport.Mesh, 4);
        r.AddThroughput(OverlayMeshReport.Mesh, 3);
        r.AddLatency(OverlayMeshReport.Direct, Stats(100, 500));
        r.AddLatency(OverlayMeshReport.Haproxy, Stats(400, 900));
        r.AddLatency(OverlayMeshReport.GuestDirect, Stats(300, 1000));
        r.AddLatency(OverlayMeshReport.HaproxyGuests, Stats(800, 2000));
        // Each percentile is the median of the rounds' values: p50 700, p99 4000, p99.9 8000.
        r.AddLatency(OverlayMeshReport.Mesh, Stats(600, 5000));
        r.AddLatency(OverlayMeshReport.Mesh, Stats(900, 3000));
        r.AddLatency(OverlayMeshReport.Mesh, Stats(700, 4000, failed: 2));
        r.DirectFirstCalls.AddRange([new(50, null, null, 120), new(60, null, null, 140)]);
        r.MeshFirstCalls.AddRange([new(900, 400, 700, 1500, 1000), new(800, 300, 600, 1100, 900), new(null, 350, null, null)]);
        return r;
    }

    private static string Build(OverlayMeshResults r, params string[] args)
    {
        OverlayMeshBenchOptions options = OverlayMeshBenchOptions.Parse(args, TextWriter.Null)!;
        return OverlayMeshReport.Build(Machine, options, ["overlay-mesh-bench", .. args], r, new CommandLog());
    }

    private static string Row(string report, string startsWith) =>
        report.Split('\n').Single(l => l.StartsWith(startsWith, StringComparison.Ordinal));

    [Fact]
    public void SummaryComparesTheTunnelWithHaproxyBetweenTheSameGuests()
    {
        string report = Build(Results());

        Assert.Equal("| throughput, Gbit/s (higher is better) | 3.00 | 2.00 | 1.50x | yes |", Row(report, "| throughput"));
        // Added against direct guest -> guest: mesh p50 700-300 = +400, haproxy 800-300 = +500.
        Assert.Equal("| added p50 at 1000 req/s, µs (lower is better) | +400 | +500 | 0.80x | yes |", Row(report, "| added p50"));
        // p99: mesh 4000-1000 = +3000, haproxy 2000-1000 = +1000.
        Assert.Equal("| added p99 at 1000 req/s, µs (lower is better) | +3000 | +1000 | 3.00x | no |", Row(report, "| added p99"));
        Assert.StartsWith("| workload start on B to first call from A, p50 ms | 1100 |", Row(report, "| workload start"), StringComparison.Ordinal);
        Assert.Contains("1.00 / 2.00 / 3.00 at the start, 4.00 / 5.00 / 6.00 at the end", report, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryRowNamesItsBaselineAndTheRatioToIt()
    {
        string report = Build(Results());

        Assert.Equal($"| {OverlayMeshReport.Haproxy} | 4.00 | 1 | - | {OverlayMeshReport.Direct} | 0.50x | 2.00x |", Row(report, $"| {OverlayMeshReport.Haproxy} | 4.00"));
        Assert.Equal($"| {OverlayMeshReport.Mesh} | 3.00 | 3 | 1.00-4.00 | {OverlayMeshReport.GuestDirect} | 0.60x | 1.50x |", Row(report, $"| {OverlayMeshReport.Mesh} | 3.00"));
        Assert.Equal($"| {OverlayMeshReport.Mesh} | 3000 | 2 | 700 | 600-900 | 4000 | 3000-5000 | 8000 | {OverlayMeshReport.GuestDirect} | +400 | +3000 | +6000 |",
            Row(report, $"| {OverlayMeshReport.Mesh} | 3000 |"));
        Assert.Equal($"| {OverlayMeshReport.Direct} | 1000 | 0 | 100 | - | 500 | - | 1000 | - | - | - | - |", Row(report, $"| {OverlayMeshReport.Direct} | 1000 |"));
    }

    [Fact]
    public void FirstCallRowsCountFailedSamplesAndSummarizeTheRest()
    {
        string report = Build(Results());

        // Two of three mesh samples succeeded: 1100 and 1500 ms (nearest rank: p50 1100, p90 1500).
        Assert.Equal("| beemesh, `beemesh run --name` on B, called by name from A | 2 | 1 | 800 | 350 | 600 | 900 | 1100 | 1100 | 1500 | 1500 |",
            Row(report, "| beemesh, `beemesh run --name`"));
        Assert.Equal("| no mesh (plain server process in B) | 2 | 0 | 50 | - | - | - | 120 | 120 | 140 | 140 |", Row(report, "| no mesh"));
        Assert.Equal("| beemesh, the same with no resolver on node A | 0 | 0 | | | | | | | | |", Row(report, "| beemesh, the same"));
        Assert.Equal("| 1 | 900 | 400 | 700 | 1000 | 1500 |", Row(report, "| 1 |"));
        Assert.Equal("| 3 | - | 350 | - | - | - |", Row(report, "| 3 |"));
        // Gaps per sample: route - registered 300 and 300; resolved - route 300 and 300;
        // first call - max(listening, resolved) 500 and 200 (p50 nearest rank: 200). The third sample has no ends.
        Assert.Contains("the route reaches A's agent 300 ms after B's agent has it; the name resolves in A's guest 300 ms after A's agent has it; the first call succeeds 200 ms after", report, StringComparison.Ordinal);
    }

    [Fact]
    public void AFailedPathIsShownAsFailedAndTheVerdictStaysOpen()
    {
        OverlayMeshResults r = Results();
        r.ThroughputGbps[OverlayMeshReport.Mesh].Clear();
        r.Latency[OverlayMeshReport.Mesh].Clear();
        r.AddThroughput(OverlayMeshReport.Mesh, null);
        r.AddLatency(OverlayMeshReport.Mesh, null);
        r.Notes.Add("throughput beemesh: failed (reset)");

        string report = Build(r, "--quick");

        Assert.Equal("| throughput, Gbit/s (higher is better) | failed | 2.00 | - | - |", Row(report, "| throughput"));
        Assert.Equal("| added p50 at 1000 req/s, µs (lower is better) | failed | +500 | - | - |", Row(report, "| added p50"));
        Assert.Equal($"| {OverlayMeshReport.Mesh} | failed | 0 | - | {OverlayMeshReport.GuestDirect} | - | - |", Row(report, $"| {OverlayMeshReport.Mesh} | failed | 0"));
        Assert.Equal($"| {OverlayMeshReport.Mesh} | failed | | | | | | | | | | |", Row(report, $"| {OverlayMeshReport.Mesh} | failed | |"));
        Assert.Contains("- throughput beemesh: failed (reset)", report, StringComparison.Ordinal);
        Assert.Contains("**Short run (3 s measurements, 1 round(s), 3 first-call samples)", report, StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutLibmsquicTheQuicRowsSaySoInBothTables()
    {
        OverlayMeshResults r = Results();
        r.QuicSkipped = "skipped: libmsquic not found";

        string report = Build(r, "--quick");

        string[] lines = report.Split('\n');
        // One row in the throughput table (7 columns), one in the latency table (12 columns).
        Assert.Contains($"| {OverlayMeshReport.MeshQuic} | skipped: libmsquic not found | | | | | |", lines);
        Assert.Contains($"| {OverlayMeshReport.MeshQuic} | skipped: libmsquic not found | | | | | | | | | | |", lines);
        Assert.Equal(2, lines.Count(l => l.StartsWith($"| {OverlayMeshReport.MeshQuic} |", StringComparison.Ordinal)));
        // The verdict stays the TCP tunnel's.
        Assert.Equal("| throughput, Gbit/s (higher is better) | 3.00 | 2.00 | 1.50x | yes |", Row(report, "| throughput"));
    }

    [Fact]
    public void QuicRowsAreComparedWithTheSameBaselineAsTheTunnel()
    {
        OverlayMeshResults r = Results();
        r.AddThroughput(OverlayMeshReport.MeshQuic, 1);
        r.AddLatency(OverlayMeshReport.MeshQuic, Stats(500, 2000));

        string report = Build(r, "--quick");

        Assert.Equal($"| {OverlayMeshReport.MeshQuic} | 1.00 | 1 | - | {OverlayMeshReport.GuestDirect} | 0.20x | 0.50x |", Row(report, $"| {OverlayMeshReport.MeshQuic} | 1.00"));
        Assert.Equal($"| {OverlayMeshReport.MeshQuic} | 1000 | 0 | 500 | - | 2000 | - | 4000 | {OverlayMeshReport.GuestDirect} | +200 | +1000 | +2000 |", Row(report, $"| {OverlayMeshReport.MeshQuic} | 1000 |"));
        Assert.DoesNotContain("skipped", report, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2.0, 1.0, true, "yes")]
    [InlineData(1.0, 1.0, true, "yes")]
    [InlineData(0.9, 1.0, true, "no")]
    [InlineData(-5.0, 10.0, false, "yes")]
    [InlineData(11.0, 10.0, false, "no")]
    public void MetComparesInTheRightDirection(double beemesh, double haproxy, bool higherIsBetter, string expected) =>
        Assert.Equal(expected, OverlayMeshReport.Met(beemesh, haproxy, higherIsBetter));
}
