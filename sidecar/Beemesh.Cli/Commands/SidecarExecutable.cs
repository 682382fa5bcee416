using System.CommandLine;
using System.CommandLine.Invocation;
using Beemesh.Interop;

namespace Beemesh.Cli.Commands;

/// <summary>
/// The sidecar role runs as its own executable, <c>beemesh-sidecar</c> next to this one: a
/// NativeAOT process writes out the type metadata of its whole executable into private pages at
/// start-up, and one per workload should not pay for the agent, the overlay and the injector
/// (loadtests/reports/memory.md). <c>beemesh run</c> and <c>beemesh sidecar</c> parse their
/// arguments here (help and usage errors stay the CLI's), then exec it with the same arguments: the
/// process keeps its pid, parent, environment, descriptors and terminal, so the command it starts is
/// still its child and the agent still sees the same process register. Without the executable
/// (a build that has only <c>beemesh</c>) the command runs in this process, as before.
/// </summary>
internal static class SidecarExecutable
{
    /// <summary>The executable's file name, next to <c>beemesh</c>.</summary>
    public const string FileName = "beemesh-sidecar";

    /// <summary>
    /// Makes <paramref name="command"/> exec the sidecar executable with <paramref name="args"/>
    /// (this process's arguments) once its arguments are parsed and valid; its own action stays the
    /// fallback when there is no such executable.
    /// </summary>
    public static Command Delegate(Command command, string[] args)
    {
        if (command.Action is not AsynchronousCommandLineAction inner)
        {
            throw new InvalidOperationException($"the {command.Name} command has no asynchronous action to fall back to");
        }

        command.Action = new ExecAction(inner, args);
        return command;
    }

    /// <summary>The sidecar executable beside <paramref name="processPath"/>, or null when there is none.</summary>
    internal static string? Find(string? processPath)
    {
        if (processPath is null || Path.GetDirectoryName(processPath) is not { Length: > 0 } directory)
        {
            return null;
        }

        string path = Path.Combine(directory, FileName);
        return File.Exists(path) ? path : null;
    }

    private sealed class ExecAction(AsynchronousCommandLineAction inner, string[] args) : AsynchronousCommandLineAction
    {
        public override Task<int> InvokeAsync(ParseResult parseResult, CancellationToken cancellationToken = default)
        {
            if (Find(Environment.ProcessPath) is { } path)
            {
                // Returns only on failure: the sidecar then runs here, as it would without the executable.
                // The managed environment, not the native one: this process emptied the machine trust
                // store's variables natively for itself (PlatformTrustStore), and the sidecar and the
                // workload it starts must get the values the user gave.
                int errno = ExecV.Run(path, [FileName, .. args], ExecV.ManagedEnvironment());
                parseResult.InvocationConfiguration.Error.WriteLine(
                    $"beemesh {parseResult.CommandResult.Command.Name}: cannot start {path} (errno {errno}); running in this process");
            }

            return inner.InvokeAsync(parseResult, cancellationToken);
        }
    }
}
