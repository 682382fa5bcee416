using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.StateBench;

/// <summary>What one state-bench run measured, per target; a missing value is a failed measurement (see <see cref="Notes"/>).</summary>
internal sealed class StateBenchResults
{
    public const string Strong = "beemesh strong (3 replicas, Dapr HTTP)";
    public const string StrongGrpc = "beemesh strong (3 replicas, Dapr gRPC)";
    public const string Etcd = "etcd (3 members, v3 JSON gateway)";
    public const string Eventual = "beemesh eventual (1 replica, Dapr HTTP)";
    public const string EventualGrpc = "beemesh eventual (1 replica, Dapr gRPC)";
    public const string Redis = "redis (1 server, RESP)";

    /// <summary>/proc/loadavg when the run started.</summary>
    public string LoadAtStart { get; set; } = "";

    /// <summary>/proc/loadavg when the measurements ended.</summary>
    public string LoadAtEnd { get; set; } = "";

    /// <summary>Range over the rounds of each target's rates, as text, when there was more than one round.</summary>
    public Dictionary<string, string> Ranges { get; } = [];

    /// <summary>Versions of the programs measured, by name.</summary>
    public Dictionary<string, string> Versions { get; } = [];

    /// <summary>The write step of the all-writes measurement, per target.</summary>
    public Dictionary<string, StepStats?> Writes { get; } = [];

    /// <summary>The read step of the mixed measurement, per target.</summary>
    public Dictionary<string, StepStats?> MixReads { get; } = [];

    /// <summary>The write step of the mixed measurement, per target.</summary>
    public Dictionary<string, StepStats?> MixWrites { get; } = [];

    /// <summary>Disk syncs (fsync, fdatasync, msync, sync_file_range) per acknowledged write, per target, from a separate traced run.</summary>
    public Dictionary<string, double?> SyncsPerWrite { get; } = [];

    /// <summary>Per syscall, calls per acknowledged write in the same traced run, as text, per target.</summary>
    public Dictionary<string, string> SyncCalls { get; } = [];

    /// <summary>Where each target's client ran (which member), by target.</summary>
    public Dictionary<string, string> Placement { get; } = [];

    public List<string> Notes { get; } = [];
}
