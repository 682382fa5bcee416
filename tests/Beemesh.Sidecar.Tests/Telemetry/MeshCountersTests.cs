using Beemesh.Sidecar.Telemetry;

namespace Beemesh.Sidecar.Tests.Telemetry;

public sealed class MeshCountersTests
{
    [Fact]
    public void Histogram_PutsEachDurationInTheFirstBucketThatHoldsIt()
    {
        var histogram = new HandshakeHistogram();

        histogram.Observe(TimeSpan.FromMilliseconds(0.5));  // <= 0.001
        histogram.Observe(TimeSpan.FromMilliseconds(1));    // <= 0.001 (bounds are inclusive)
        histogram.Observe(TimeSpan.FromMilliseconds(30));   // <= 0.05
        histogram.Observe(TimeSpan.FromSeconds(10));        // +Inf
        histogram.Fail();

        long[] buckets = histogram.BucketCounts();
        Assert.Equal(HandshakeHistogram.Bounds.Count + 1, buckets.Length);
        Assert.Equal(2, buckets[0]);
        Assert.Equal(1, buckets[5]);
        Assert.Equal(1, buckets[^1]);
        Assert.Equal(4, buckets.Sum());
        Assert.Equal(4, histogram.Count);
        Assert.Equal(1, histogram.Failures);
        Assert.Equal(10.0315, histogram.SumSeconds, 6);
    }

    [Fact]
    public void Lost_tunnel_connections_and_their_flows_are_counted_by_reason_and_reported()
    {
        var counters = new MeshCounters();
        counters.CountTunnelLost(Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason.KeepAliveTimeout, 3);
        counters.CountTunnelLost(Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason.KeepAliveTimeout, 0);
        counters.CountTunnelLost(Beemesh.Sidecar.Tunnel.Http2.Http2CloseReason.PingFlood, 1);

        Beemesh.Agent.Client.MeshCounterReport report = Beemesh.Sidecar.Mesh.MeshCounterReports.From(counters, active: 0);

        Assert.Equal(new Dictionary<string, long> { ["keepalive_timeout"] = 2, ["ping_flood"] = 1 }, report.TunnelConnectionsLost);
        Assert.Equal(new Dictionary<string, long> { ["keepalive_timeout"] = 3, ["ping_flood"] = 1 }, report.TunnelFlowsLost);
    }

    [Fact]
    public void Counters_AreExactUnderConcurrentUpdates()
    {
        var counters = new MeshCounters();

        Parallel.For(0, 10_000, i =>
        {
            counters.CountDecision(i % 2 == 0, i % 3 == 0 ? "connect" : "policy-changed");
            counters.CountBytes(toWorkload: i % 2 == 0, 3);
            counters.CountConnectionOpened();
            counters.CountRevocation("svid-expired");
            counters.ServerHandshakes.Observe(TimeSpan.FromMilliseconds(2));
        });

        Assert.Equal(10_000, counters.Allowed.Values.Sum() + counters.Denied.Values.Sum());
        Assert.Equal(5_000, counters.Allowed.Values.Sum());
        Assert.Equal(3_334, counters.Allowed["connect"] + counters.Denied["connect"]);
        Assert.Equal(15_000, counters.BytesToWorkload);
        Assert.Equal(15_000, counters.BytesFromWorkload);
        Assert.Equal(10_000, counters.ConnectionsOpened);
        Assert.Equal(10_000, counters.Revocations["svid-expired"]);
        Assert.Equal(10_000, counters.ServerHandshakes.Count);
        Assert.Equal(10_000, counters.ServerHandshakes.BucketCounts()[1]);
    }
}
