using System.Diagnostics;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// The <c>beemesh</c> processes one test starts (agent, sidecars, CLI calls), their output copied to
/// the test's log, all killed when the test ends.
/// </summary>
public sealed class BeemeshProcesses(ITestOutputHelper output) : IDisposable
{
    private readonly List<Process> _processes = [];

    /// <summary>Starts <c>beemesh ARGS</c>.</summary>
    public Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { output.WriteLine(e.Data); } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { output.WriteLine(e.Data); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _processes.Add(p);
        return p;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _processes)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(TimeSpan.FromSeconds(5));
            }

            p.Dispose();
        }
    }
}
