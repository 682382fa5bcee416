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
