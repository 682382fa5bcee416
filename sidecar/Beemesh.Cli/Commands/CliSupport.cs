using Beemesh.Agent.Client;
using Beemesh.Authorization;
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
}
