using System.Globalization;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>What one <c>beemesh run</c> did: exit status, output and, with <c>--debug</c>, the stack's counters.</summary>
/// <param name="ExitCode">The exit status (the guest command's), or -1 when it was killed on timeout.</param>
/// <param name="Stdout">Everything written to stdout.</param>
/// <param name="Stderr">Everything written to stderr (the Prometheus counters land here with --debug).</param>
/// <param name="TimedOut">True when the run was killed because it outlived its timeout.</param>
/// <param name="Elapsed">Wall time from start to exit.</param>
public sealed record BeemeshRunResult(int ExitCode, string Stdout, string Stderr, bool TimedOut, TimeSpan Elapsed)
{
    /// <summary>The value of counter <c>beemesh_netstack_NAME</c> printed by <c>--debug</c>, or null when absent.</summary>
    /// <param name="name">The name after the <c>beemesh_netstack_</c> prefix, e.g. <c>malformed_frames_total</c>.</param>
    public long? Counter(string name)
    {
        string prefix = "beemesh_netstack_" + name + " ";
        foreach (string line in Stderr.Split('\n'))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal)
                && long.TryParse(line.AsSpan(prefix.Length).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long value))
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>The counter lines only (<c>beemesh_netstack_* N</c>), for test output.</summary>
    public string CounterSummary() =>
        string.Join(' ', Stderr.Split('\n').Where(l => l.StartsWith("beemesh_netstack_", StringComparison.Ordinal)).Select(l => l["beemesh_netstack_".Length..].Replace("_total", "", StringComparison.Ordinal).Replace(' ', '=')));

    /// <summary>A one-screen description for assertion messages.</summary>
    public override string ToString()
    {
        static string Tail(string s) => s.Length <= 3000 ? s : "..." + s[^3000..];
        string stderr = string.Join('\n', Stderr.Split('\n').Where(l => !l.StartsWith("# ", StringComparison.Ordinal)));
        return $"exit={ExitCode} timedOut={TimedOut} elapsed={Elapsed.TotalSeconds:F1}s\n--- stdout ---\n{Tail(Stdout)}\n--- stderr ---\n{Tail(stderr)}";
    }
}
