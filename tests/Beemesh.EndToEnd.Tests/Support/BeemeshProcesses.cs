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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, System.Collections.Concurrent.ConcurrentQueue<string>> _lines = new();

    /// <summary>The lines (stdout and stderr) process <paramref name="p"/> has written so far.</summary>
    public IReadOnlyCollection<string> Lines(Process p) => _lines.TryGetValue(p.Id, out var lines) ? lines : [];

    /// <summary>Starts <c>beemesh ARGS</c>.</summary>
    public Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo(BeemeshEnvironment.BeemeshPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        var lines = _lines.GetOrAdd(p.Id, _ => new());
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue(e.Data); output.WriteLine(e.Data); } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue(e.Data); output.WriteLine(e.Data); } };
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
