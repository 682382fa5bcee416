namespace Beemesh.LoadTests.Bench;

/// <summary>One measured quantity, how to print it, and which direction is better.</summary>
internal sealed record BenchMetric(string Title, string Unit, bool HigherIsBetter, string Format, string HowMeasured)
{
    public static readonly BenchMetric ThroughputUp = new("TCP throughput, namespace → host", "Gbit/s", true, "0.00", "iperf3 client in the namespace sending to iperf3 -s on host 127.0.0.1; receiver's rate");
    public static readonly BenchMetric ThroughputDown = new("TCP throughput, host → namespace", "Gbit/s", true, "0.00", "same with iperf3 -R");
    public static readonly BenchMetric ConnectRate = new("TCP connect rate", "conn/s", true, "0", "connect + server close, 4 concurrent loops in the namespace");
    public static readonly BenchMetric LatencyP50 = new("Request/response latency p50", "µs", false, "0", "1-byte ping-pong over one connection to a host echo server");
    public static readonly BenchMetric LatencyP99 = new("Request/response latency p99", "µs", false, "0", "same, 99th percentile");
    public static readonly BenchMetric RssIdle = new("RSS idle", "MiB", false, "0.0", "VmRSS of the stack process after setup, before any traffic");
    public static readonly BenchMetric RssConnections = new("RSS with 1,000 open connections", "MiB", false, "0.0", "VmRSS with 1,000 connections open from the namespace to a host server");

    public static IReadOnlyList<BenchMetric> All { get; } =
        [ThroughputUp, ThroughputDown, ConnectRate, LatencyP50, LatencyP99, RssIdle, RssConnections];
}
