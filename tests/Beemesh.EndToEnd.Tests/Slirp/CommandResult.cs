namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>What a finished command left behind.</summary>
/// <param name="ExitCode">The exit status; -1 when the command was killed at its time limit.</param>
/// <param name="Stdout">Everything written to standard output.</param>
/// <param name="Stderr">Everything written to standard error.</param>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>A one-line summary for assertion messages.</summary>
    public override string ToString() => $"exit {ExitCode}; stdout: {Stdout.Trim()}; stderr: {Stderr.Trim()}";
}
