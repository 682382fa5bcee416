namespace Beemesh.Sidecar.Telemetry;

/// <summary>
/// A fixed-bucket latency histogram for TLS handshakes (Prometheus style: per-bucket counts, a sum
/// and a count), updated lock-free. Bucket counts are stored per bucket, not cumulatively; the
/// renderer accumulates them.
/// </summary>
public sealed class HandshakeHistogram
{
    /// <summary>Upper bounds of the buckets in seconds (the last, +Inf, is implied).</summary>
    public static readonly IReadOnlyList<double> Bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private readonly long[] _buckets = new long[Bounds.Count + 1];
    private long _count;
    private long _sumMicroseconds;
    private long _failures;

    /// <summary>Records one completed handshake that took <paramref name="duration"/>.</summary>
    public void Observe(TimeSpan duration)
    {
        double seconds = duration.TotalSeconds;
        int bucket = Bounds.Count;
        for (int i = 0; i < Bounds.Count; i++)
        {
            if (seconds <= Bounds[i])
            {
                bucket = i;
                break;
            }
        }

        Interlocked.Increment(ref _buckets[bucket]);
        Interlocked.Add(ref _sumMicroseconds, (long)(duration.Ticks / TimeSpan.TicksPerMicrosecond));
        Interlocked.Increment(ref _count);
    }

    /// <summary>Records a handshake that failed (not part of the latency buckets).</summary>
    public void Fail() => Interlocked.Increment(ref _failures);

    /// <summary>Completed handshakes.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Failed handshakes.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Total time of the completed handshakes, in seconds.</summary>
    public double SumSeconds => Interlocked.Read(ref _sumMicroseconds) / 1e6;

    /// <summary>A copy of the per-bucket (non-cumulative) counts; the last entry is the +Inf bucket.</summary>
    public long[] BucketCounts()
    {
        long[] copy = new long[_buckets.Length];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = Interlocked.Read(ref _buckets[i]);
        }

        return copy;
    }
}
