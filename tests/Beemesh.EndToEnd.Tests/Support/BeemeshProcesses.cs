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
    private TaskCompletionSource _lineWritten = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The lines (stdout and stderr) process <paramref name="p"/> has written so far.</summary>
    public IReadOnlyCollection<string> Lines(Process p) => _lines.TryGetValue(p.Id, out var lines) ? lines : [];

    /// <summary>Starts <c>beemesh ARGS</c>.</summary>
    public Process Start(params string[] args) => StartProgram(BeemeshEnvironment.BeemeshPath, args);

    /// <summary>Starts <paramref name="file"/> <c>ARGS</c> (e.g. <c>ip netns exec NS beemesh ...</c>), kept and killed like the others.</summary>
    public Process StartProgram(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        var lines = _lines.GetOrAdd(p.Id, _ => new());
        p.OutputDataReceived += (_, e) => Append(lines, e.Data);
        p.ErrorDataReceived += (_, e) => Append(lines, e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _processes.Add(p);
        return p;
    }

    /// <summary>
    /// Waits until process <paramref name="p"/> wrote a line (stdout or stderr) starting with
    /// <paramref name="prefix"/>, checked again at every line written, never on a timer. False when it
    /// exited or <paramref name="cap"/> (a cap for a broken build, not a measured bound) passed first.
    /// </summary>
    public async Task<bool> WaitForLineAsync(Process p, string prefix, TimeSpan cap)
    {
        bool Seen() => Lines(p).Any(l => l.StartsWith(prefix, StringComparison.Ordinal));
        using var limit = new CancellationTokenSource(cap);
        Task exited = p.WaitForExitAsync(limit.Token);
        while (true)
        {
            Task line = Volatile.Read(ref _lineWritten).Task; // taken before the check, so no line in between is missed
            if (Seen())
            {
                return true;
            }

            if (exited.IsCompleted)
            {
                return Seen();
            }

            try
            {
                await Task.WhenAny(line, exited).WaitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                return Seen();
            }
        }
    }

    private void Append(System.Collections.Concurrent.ConcurrentQueue<string> lines, string? line)
    {
        if (line is null)
        {
            return;
        }

        lines.Enqueue(line);
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The test is over; the line is still kept.
        }

        Interlocked.Exchange(ref _lineWritten, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _processes)
        {
            if (!p.HasExited)
            {
                ProcessTree.Kill(p);
                p.WaitForExit(TimeSpan.FromSeconds(5));
            }

            p.Dispose();
        }
    }
}
