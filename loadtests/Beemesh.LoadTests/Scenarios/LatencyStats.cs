namespace Beemesh.LoadTests.Scenarios;

/// <summary>Latency summary in microseconds.</summary>
/// <param name="MinUs">Smallest latency (exact).</param>
/// <param name="MeanUs">Mean latency (exact).</param>
/// <param name="P50Us">Median.</param>
/// <param name="P75Us">75th percentile.</param>
/// <param name="P95Us">95th percentile.</param>
/// <param name="P99Us">99th percentile.</param>
/// <param name="P999Us">99.9th percentile.</param>
/// <param name="MaxUs">Largest latency (exact).</param>
public sealed record LatencyStats(
    double MinUs,
    double MeanUs,
    double P50Us,
    double P75Us,
    double P95Us,
    double P99Us,
    double P999Us,
    double MaxUs)
{
    /// <summary>Summarizes a histogram of nanosecond values.</summary>
    public static LatencyStats From(LatencyHistogram nanoseconds)
    {
        ArgumentNullException.ThrowIfNull(nanoseconds);
        return new LatencyStats(
            nanoseconds.Min / 1000.0,
            nanoseconds.Mean / 1000.0,
            nanoseconds.ValueAtPercentile(50) / 1000.0,
            nanoseconds.ValueAtPercentile(75) / 1000.0,
            nanoseconds.ValueAtPercentile(95) / 1000.0,
            nanoseconds.ValueAtPercentile(99) / 1000.0,
            nanoseconds.ValueAtPercentile(99.9) / 1000.0,
            nanoseconds.Max / 1000.0);
    }
}
