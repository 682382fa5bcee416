using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>Everything one overlay-mesh-bench run measured; a null value means that measurement failed (see <see cref="Notes"/>).</summary>
internal sealed class OverlayMeshResults
{
    /// <summary>Path name to Gbit/s of one iperf3 stream, one value per round that succeeded.</summary>
    public Dictionary<string, List<double>> ThroughputGbps { get; } = [];

    /// <summary>Path name to request/response latency at the fixed rate, one entry per round that succeeded.</summary>
    public Dictionary<string, List<StepStats>> Latency { get; } = [];

    /// <summary>Adds one round's throughput of <paramref name="path"/> (null: that round failed).</summary>
    public void AddThroughput(string path, double? gbps)
    {
        List<double> rounds = ThroughputGbps.TryGetValue(path, out List<double>? list) ? list : ThroughputGbps[path] = [];
        if (gbps is { } value)
        {
            rounds.Add(value);
        }
    }

    /// <summary>Adds one round's latency of <paramref name="path"/> (null: that round failed).</summary>
    public void AddLatency(string path, StepStats? stats)
    {
        List<StepStats> rounds = Latency.TryGetValue(path, out List<StepStats>? list) ? list : Latency[path] = [];
        if (stats is not null)
        {
            rounds.Add(stats);
        }
    }

    /// <summary>Start of a named workload on the server node to the first successful call from the client node through the mesh.</summary>
    public List<FirstCallSample> MeshFirstCalls { get; } = [];

    /// <summary>The same as <see cref="MeshFirstCalls"/> with no resolver answering on the client node (the mesh DNS relays unknown names to it).</summary>
    public List<FirstCallSample> NoResolverFirstCalls { get; } = [];

    /// <summary>Start of a plain server process in the server node's namespace to the first successful call from the client node, no mesh.</summary>
    public List<FirstCallSample> DirectFirstCalls { get; } = [];

    /// <summary>How long the agents took from the first agent's start to every node seeing all nodes alive, ms.</summary>
    public double? MeshFormedMs { get; set; }

    /// <summary>/proc/loadavg when the run started.</summary>
    public string LoadBefore { get; set; } = "";

    /// <summary>/proc/loadavg when the run ended.</summary>
    public string LoadAfter { get; set; } = "";

    /// <summary>Why the QUIC rows were not measured (libmsquic missing, or the runs did not go over QUIC); null when they were.</summary>
    public string? QuicSkipped { get; set; }

    /// <summary>Anything that went wrong or looked odd, in order.</summary>
    public List<string> Notes { get; } = [];
}

/// <summary>
/// One start-to-first-call sample, each time in ms from the server's start command; null when that
/// point was not seen (<see cref="FirstCallMs"/> null: the call never succeeded).
/// </summary>
/// <param name="ListeningMs">The server printed that it listens (inside its guest, for a workload).</param>
/// <param name="RegisteredMs">The server node's agent resolves the workload's name.</param>
/// <param name="RouteMs">The client node's agent resolves the name (the route arrived by gossip).</param>
/// <param name="FirstCallMs">The client's first successful call (connect and echo).</param>
/// <param name="ResolvedMs">The name first resolved for the client (inside its guest, through the mesh DNS); null without a name.</param>
internal sealed record FirstCallSample(double? ListeningMs, double? RegisteredMs, double? RouteMs, double? FirstCallMs, double? ResolvedMs = null);
