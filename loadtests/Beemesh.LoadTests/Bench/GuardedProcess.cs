using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// A long-lived helper (a network stack, an iperf3 server) started under a small guard shell.
/// The shell prints the helper's pid and then reads its stdin, a pipe only the harness holds:
/// when the harness stops the helper, or dies in any way, the pipe closes and the shell kills
/// the helper, so nothing outlives the run.
/// </summary>
internal sealed class GuardedProcess : IAsyncDisposable
{
    private readonly Process _guard;

    private GuardedProcess(Process guard, int pid, string logPath)
    {
        _guard = guard;
        Pid = pid;
        LogPath = logPath;
    }

    /// <summary>The helper's own pid (not the guard's).</summary>
    public int Pid { get; }

    /// <summary>File that receives the helper's stdout and stderr.</summary>
    public string LogPath { get; }

    public bool IsAlive => ChildProcesses.IsAlive(Pid);

    /// <summary>Starts <paramref name="argv"/>; <paramref name="redirections"/> is extra shell redirection such as <c>3&gt;file</c>.</summary>
    public static async Task<GuardedProcess> StartAsync(IReadOnlyList<string> argv, string logPath, string redirections)
    {
        // .NET ignores SIGPIPE and an ignored signal survives exec; give helpers the default
        // disposition they would get from a login shell (pasta refuses to start otherwise).
        string script = $"env --default-signal=PIPE {CommandLog.Quote(argv)} {redirections} >{CommandLog.QuoteOne(logPath)} 2>&1 & echo $!; cat >/dev/null; kill $! 2>/dev/null; wait";
        Process guard = Process.Start(ProcessRunner.StartInfo(["/bin/sh", "-c", script]))
            ?? throw new InvalidOperationException("cannot start /bin/sh");
        ChildProcesses.Track(guard);
        string? line = await guard.StandardOutput.ReadLineAsync().ConfigureAwait(false);
        if (!int.TryParse(line, out int pid))
        {
            ProcessTree.Kill(guard);
            ChildProcesses.Forget(guard);
            throw new InvalidOperationException($"guard shell did not report a pid for {argv[0]}");
        }

        return new GuardedProcess(guard, pid, logPath);
    }

    /// <summary>The last lines of the helper's output, to say why it failed.</summary>
    public string LogTail(int lines = 3)
    {
        try
        {
            string[] all = File.ReadAllLines(LogPath)
                .Where(static l => l.Trim().Length > 0 && !l.StartsWith("Failed to send", StringComparison.Ordinal))
                .ToArray();
            return string.Join(" | ", all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>Stops the helper: closes the guard's pipe (SIGTERM), then SIGKILL after 3 s.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            _guard.StandardInput.Close();
        }
        catch (IOException)
        {
        }

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await _guard.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ChildProcesses.KillPid(Pid);
            ProcessTree.Kill(_guard);
            await _guard.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        ChildProcesses.Forget(_guard);
        _guard.Dispose();
    }
}
