namespace Beemesh.Agent.Client;

/// <summary>A sidecar's cumulative TLS handshake latency histogram, as it reports it.</summary>
public sealed class HandshakeReport
{
    /// <summary>Completed handshakes.</summary>
    public long Count { get; set; }

    /// <summary>Handshakes that failed or were abandoned.</summary>
    public long Failures { get; set; }

    /// <summary>Total duration of the completed handshakes, in seconds.</summary>
    public double SumSeconds { get; set; }

    /// <summary>Upper bounds of the buckets in seconds, ascending (+Inf implied).</summary>
    public List<double> Bounds { get; set; } = [];

    /// <summary>Per-bucket (not cumulative) counts: one per bound, then the +Inf bucket.</summary>
    public List<long> Buckets { get; set; } = [];
}
