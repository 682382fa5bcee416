using Beemesh.Agent.Client;
using System.CommandLine;
using Beemesh.Authorization;
using Beemesh.Sidecar.State;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Cli.Commands;

/// <summary>Small pieces every command needs the same way.</summary>
public static class CliSupport
{
    /// <summary>
    /// Single-line console logs on stderr (stdout belongs to the command or to the output the
    /// user asked for): warnings and up, or everything with <paramref name="debug"/>.
    /// </summary>
    public static ILoggerFactory CreateLoggerFactory(bool debug) => LoggerFactory.Create(b =>
    {
        b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(debug ? LogLevel.Debug : LogLevel.Warning);
        // The Raft engine warns, with a stack trace, at every missed heartbeat of a stopped replica;
        // what a strong store's user needs (no quorum, refused peers) is reported by the store.
        b.AddFilter("DotNext", debug ? LogLevel.Debug : LogLevel.Error);
        b.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });

    /// <summary>
    /// Checks a workload's <c>--name</c> and <c>--namespace</c> against the Kubernetes rules (DNS-1123
    /// labels) before anything is started or asked of the agent; returns the refusal with the rule
    /// quoted, or null when both are valid.
    /// </summary>
    public static string? CheckWorkloadNames(string? name, string? ns) =>
        (name is null ? null : KubernetesNames.CheckLabel("--name", name)) ?? (ns is null ? null : KubernetesNames.CheckLabel("--namespace", ns));

    /// <summary>
    /// The error of a bad <see cref="TunnelKeepAlive.Variable"/> value (<paramref name="value"/>, the
    /// environment's), or null when it is unset or valid: a usage error, reported before anything starts.
    /// </summary>
    public static string? CheckTunnelKeepAlive(string? value)
    {
        try
        {
            TunnelKeepAlive.Parse(value);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// The name-rule errors (metadata.name, metadata.namespace) of a policy file, found locally so a
    /// file with an odd name is refused before any call to the agent. Other errors are left to the agent.
    /// </summary>
    public static List<PolicyError> PolicyNameErrors(string yaml)
    {
        PolicyLoader.Load(yaml, out _, out IReadOnlyList<PolicyError> errors);
        return [.. errors.Where(e => e.Path.EndsWith("metadata.name", StringComparison.Ordinal) || e.Path.EndsWith("metadata.namespace", StringComparison.Ordinal))];
    }

    /// <summary>Parses a <c>--port</c> value, <c>PORT[/tcp|/http]</c>; on failure <paramref name="error"/> says why.</summary>
    public static bool TryParseMeshPort(string text, out WorkloadPort? port, out string? error)
    {
        port = null;
        error = null;
        string[] parts = text.Split('/');
        if (!int.TryParse(parts[0], out int number) || number is < 1 or > 65535 || parts.Length > 2
            || (parts.Length == 2 && parts[1] is not ("tcp" or "http")))
        {
            error = $"invalid --port '{text}': expected PORT[/tcp|/http] with PORT 1-65535";
            return false;
        }

        port = new WorkloadPort { Port = number, Protocol = parts.Length == 2 ? parts[1] : "tcp" };
        return true;
    }

    /// <summary>The error of a bad <c>--state-sync</c> value (seconds), or null: at least 0.01 and under the 1-hour tombstone grace.</summary>
    public static string? CheckStateSync(double seconds) =>
        seconds >= 0.01 && seconds < 3600 ? null : $"--state-sync {seconds}: must be at least 0.01 and under 3600 seconds (the tombstone grace)";

    /// <summary>
    /// How the replicas of workload <paramref name="name"/>.<paramref name="ns"/> find each other:
    /// in the agent's state directory on this node (hidden from the workloads themselves), and on
    /// other nodes through the agent's routes, reached through their nodes' tunnel ports.
    /// </summary>
    public static Beemesh.Sidecar.State.Strong.StrongStoreContext StateReplication(
        string agentDirectory, string name, string ns, Beemesh.Sidecar.Mesh.MeshSidecar sidecar, System.Net.IPAddress? listenAddress = null) =>
        new(Path.Combine(Path.GetFullPath(agentDirectory), "state", ns, name), sidecar.Source, Beemesh.Spiffe.SpiffeId.Parse(sidecar.Workload.SpiffeId))
        {
            Mesh = new Beemesh.Sidecar.State.Replicas.SidecarReplicaMesh(sidecar.Directory, sidecar.Tunnel, name, ns),
            ListenAddress = listenAddress ?? System.Net.IPAddress.Loopback,
        };

    /// <summary>
    /// Names each store replica of <paramref name="api"/> on <paramref name="error"/> and, for strong
    /// stores, every time it becomes the leader (those lines on the process's standard error).
    /// </summary>
    public static void ReportStateReplicas(string command, WorkloadStateApi api, TextWriter error)
    {
        foreach (var replica in api.EventualReplicas)
        {
            error.WriteLine($"{command}: eventual store {replica.Replicator.Store.Name}: replica {replica.EndPoint}");
        }

        foreach (var replica in api.StrongStores)
        {
            error.WriteLine($"{command}: strong store {replica.Name}: replica {replica.RaftEndPoint}");
            replica.BecameLeader += (r, term) => Console.Error.WriteLine($"{command}: strong store {r.Name}: replica {r.RaftEndPoint} leads (term {term})");
            if (replica.IsLeader)
            {
                error.WriteLine($"{command}: strong store {replica.Name}: replica {replica.RaftEndPoint} leads (term {replica.Term})");
            }
        }
    }

    /// <summary>
    /// <c>--resources-path DIR|FILE</c> (repeatable; <c>--components-path</c>, Dapr's older name, is an
    /// alias): Dapr <c>Component</c> files of type <c>state.beemesh</c> declaring the workload's stores.
    /// </summary>
    public static Option<string[]> ResourcesPathOption() => new("--resources-path", "--components-path")
    {
        Description = "Dapr Component YAML of type state.beemesh (a file, or a directory of .yaml/.yml files) declaring the workload's state stores",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>
    /// The workload's state stores from its <c>--state</c> flags and <c>--resources-path</c> files
    /// (<see cref="StateStoreSelection.Resolve"/>). Components skipped as another app's are named on
    /// <paramref name="error"/>; a refusal is one line there and null is returned (exit 2).
    /// </summary>
    public static List<StateStoreSpec>? ResolveStateStores(string command, string[] state, string[] resources, string name, string ns, TextWriter error)
    {
        var notes = new List<string>();
        try
        {
            List<StateStoreSpec> stores = StateStoreSelection.Resolve(state, resources, name, ns, notes);
            foreach (string note in notes)
            {
                error.WriteLine($"{command}: {note}");
            }

            return stores;
        }
        catch (StateComponentException e)
        {
            error.WriteLine($"{command}: {e.Message}");
            return null;
        }
    }
}
