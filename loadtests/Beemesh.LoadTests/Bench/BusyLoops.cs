using System.Diagnostics;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// CPU-bound processes that run beside a benchmark (<c>yes</c> writing to /dev/null), so the numbers
/// show how a path holds up on a node that is never idle; stopped when disposed.
/// </summary>
internal sealed class BusyLoops : IDisposable
{
    private readonly List<Process> _processes = [];

    private BusyLoops()
    {
    }

    /// <summary>Starts <paramref name="count"/> loops (none for 0) and logs the command.</summary>
    public static BusyLoops Start(int count, CommandLog log)
    {
        var loops = new BusyLoops();
        for (int i = 0; i < count; i++)
        {
            var psi = new ProcessStartInfo("sh") { RedirectStandardInput = false, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("exec yes > /dev/null");
            loops._processes.Add(Process.Start(psi) ?? throw new InvalidOperationException("could not start a busy loop"));
        }

        if (count > 0)
        {
            log.AddLine("busy", $"for i in $(seq {count}); do yes > /dev/null & done");
        }

        return loops;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Process p in _processes)
        {
            try
            {
                p.Kill();
                p.WaitForExit();
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            p.Dispose();
        }
    }
}
