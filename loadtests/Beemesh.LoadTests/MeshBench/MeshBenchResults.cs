using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>Everything one mesh-bench run measured; a null value means that path failed (see <see cref="Notes"/>).</summary>
internal sealed class MeshBenchResults
{
    /// <summary>Path name to Gbit/s of one iperf3 stream.</summary>
    public Dictionary<string, double?> ThroughputGbps { get; } = [];

    /// <summary>Path name to request/response latency at the fixed rate.</summary>
    public Dictionary<string, StepStats?> Latency { get; } = [];

    /// <summary>Path name to new connections per second.</summary>
    public Dictionary<string, StepStats?> Connections { get; } = [];

    /// <summary>TLS handshakes seen during the mesh connection test, when the agent's metrics show them.</summary>
    public string? MeshHandshakes { get; set; }

    /// <summary>VmRSS of an idle <c>beemesh run --name</c> process, KiB.</summary>
    public long? IdleSidecarRssKib { get; set; }

    /// <summary>Proportional set size of that process (shared pages divided among their users), KiB.</summary>
    public long? IdleSidecarPssKib { get; set; }

    /// <summary>Pages of that process no other process shares (clean + dirty), KiB: the cost of one more sidecar.</summary>
    public long? IdleSidecarPrivateKib { get; set; }

    /// <summary>VmRSS of the guest's command in that run (sleep), KiB, to show what is not the sidecar.</summary>
    public long? IdleGuestRssKib { get; set; }

    /// <summary>Revocation latencies in ms, one per successful try.</summary>
    public List<double> RevocationMs { get; } = [];

    /// <summary>Tries whose stream was not cut within the limit, or did not start.</summary>
    public int RevocationFailures { get; set; }

    /// <summary>Anything that went wrong or looked odd, in order.</summary>
    public List<string> Notes { get; } = [];
}
