using Beemesh.Agent.Client;
using Beemesh.Sidecar.Telemetry;

namespace Beemesh.Sidecar.Mesh;

/// <summary>Turns the sidecar's <see cref="MeshCounters"/> into the agent's wire form.</summary>
public static class MeshCounterReports
{
    /// <summary>The current values of <paramref name="counters"/>, with <paramref name="active"/> live inbound connections.</summary>
    public static MeshCounterReport From(MeshCounters counters, int active)
    {
        ArgumentNullException.ThrowIfNull(counters);
        return new MeshCounterReport
        {
            ConnectionsOpened = counters.ConnectionsOpened,
            ConnectionsActive = active,
            BytesToWorkload = counters.BytesToWorkload,
            BytesFromWorkload = counters.BytesFromWorkload,
            ServerHandshakes = From(counters.ServerHandshakes),
            ClientHandshakes = From(counters.ClientHandshakes),
            Allowed = new Dictionary<string, long>(counters.Allowed, StringComparer.Ordinal),
            Denied = new Dictionary<string, long>(counters.Denied, StringComparer.Ordinal),
            Revocations = new Dictionary<string, long>(counters.Revocations, StringComparer.Ordinal),
            KeptAtSvidExpiry = counters.KeptAtSvidExpiry,
            SvidRotations = counters.SvidRotations,
            TunnelConnections = new Dictionary<string, long>(counters.TunnelConnections, StringComparer.Ordinal),
            QuicFallbacks = counters.QuicFallbacks,
            EventualState = new Dictionary<string, long>(StringComparer.Ordinal)
            {
                ["pushed"] = counters.EventualState.EntriesPushed,
                ["received"] = counters.EventualState.EntriesReceived,
                ["merged"] = counters.EventualState.EntriesMerged,
                ["digest_rounds"] = counters.EventualState.DigestRounds,
                ["refused_frames"] = counters.EventualState.RefusedFrames,
                ["failed_exchanges"] = counters.EventualState.FailedExchanges,
                ["journal_dropped_records"] = counters.EventualState.JournalDroppedRecords,
                ["journal_dropped_bytes"] = counters.EventualState.JournalDroppedBytes,
                ["journal_syncs"] = counters.EventualState.JournalSyncs,
                ["journal_compactions"] = counters.EventualState.JournalCompactions,
                ["journal_failures"] = counters.EventualState.JournalFailures,
            },
            StreamLimitConnections = counters.StreamLimitConnections,
            IdleClosed = counters.IdleClosed,
            TunnelConnectionsLost = new Dictionary<string, long>(counters.TunnelConnectionsLost, StringComparer.Ordinal),
            TunnelFlowsLost = new Dictionary<string, long>(counters.TunnelFlowsLost, StringComparer.Ordinal),
        };
    }

    private static HandshakeReport From(HandshakeHistogram histogram) => new()
    {
        Buckets = [.. histogram.BucketCounts()],
        Count = histogram.Count,
        Failures = histogram.Failures,
        SumSeconds = histogram.SumSeconds,
        Bounds = [.. HandshakeHistogram.Bounds],
    };
}
