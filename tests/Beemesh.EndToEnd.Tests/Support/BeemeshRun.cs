using System.Diagnostics;
using System.Text;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// One <c>beemesh run [FLAGS] -- sh -c SCRIPT</c> process. Output is collected as it arrives, so a
/// test can wait for a line the guest prints (e.g. "READY" once its server listens) while the run
/// goes on. On timeout or dispose the whole process tree is killed.
/// </summary>
public sealed class BeemeshRun : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _timedOut;

    private BeemeshRun(Process process)
    {
        _process = process;
    }

    /// <summary>Starts <c>beemesh run FLAGS -- sh -c SCRIPT</c>.</summary>
    /// <param name="flags">Options of <c>beemesh run</c> (e.g. <c>--debug</c>, <c>-p</c>, <c>-6</c>).</param>
    /// <param name="script">The shell script run inside the namespace.</param>
    /// <param name="environment">Extra environment for beemesh and the guest (e.g. BEEMESH_DNS_UPSTREAM).</param>
    /// <param name="workingDirectory">Where <c>beemesh run</c> is started; the test's own when null.</param>
    /// <param name="networkNamespace">A named network namespace to start it in (<c>ip netns exec</c>); the test's own when null.</param>
    public static BeemeshRun Start(IEnumerable<string> flags, string script, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null, string? networkNamespace = null)
    {
        var info = new ProcessStartInfo(networkNamespace is null ? BeemeshEnvironment.BeemeshPath : "ip")
        {
            WorkingDirectory = workingDirectory ?? string.Empty,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (networkNamespace is not null)
        {
            foreach (string a in new[] { "netns", "exec", networkNamespace, BeemeshEnvironment.BeemeshPath })
            {
                info.ArgumentList.Add(a);
            }
        }

        info.ArgumentList.Add("run");
        foreach (string flag in flags)
        {
            info.ArgumentList.Add(flag);
        }

        info.ArgumentList.Add("--");
        info.ArgumentList.Add("sh");
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = info };
        var run = new BeemeshRun(process);
        process.OutputDataReceived += (_, e) => run.Append(run._stdout, e.Data, run._stdoutClosed);
        process.ErrorDataReceived += (_, e) => run.Append(run._stderr, e.Data, run._stderrClosed);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return run;
    }

    /// <summary>Runs a script to completion (or kills it at <paramref name="timeout"/>) and returns what happened.</summary>
    /// <param name="flags">Options of <c>beemesh run</c>.</param>
    /// <param name="script">The shell script run inside the namespace.</param>
    /// <param name="timeout">How long before the process tree is killed.</param>
    /// <param name="environment">Extra environment variables.</param>
    /// <param name="workingDirectory">Where <c>beemesh run</c> is started; the test's own when null.</param>
    public static async Task<BeemeshRunResult> RunAsync(IEnumerable<string> flags, string script, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        await using var run = Start(flags, script, environment, workingDirectory);
        return await run.WaitAsync(timeout);
    }

    /// <summary>The pid of the <c>beemesh run</c> process itself.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Stdout so far.</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>Stderr so far (the sidecar's log lines and the guest's errors).</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Waits until stdout holds a line starting with <paramref name="prefix"/>; false when the run ended or time ran out first.</summary>
    /// <param name="prefix">The start of the line to wait for.</param>
    /// <param name="timeout">How long to wait.</param>
    public async Task<bool> WaitForLineAsync(string prefix, TimeSpan timeout)
    {
        bool Seen() => Stdout.Split('\n').Any(l => l.StartsWith(prefix, StringComparison.Ordinal));

        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (Seen())
            {
                return true;
            }

            if (_process.HasExited)
            {
                await _stdoutClosed.Task.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                return Seen();
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>Waits for exit; past <paramref name="timeout"/> kills the process tree and reports a timeout.</summary>
    /// <param name="timeout">How long the run may still take.</param>
    public async Task<BeemeshRunResult> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _timedOut = true;
            Kill();
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        // The guest may leave children holding the pipes; do not wait for them forever.
        await Task.WhenAny(Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task), Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        string stdout, stderr;
        lock (_stdout)
        {
            stdout = _stdout.ToString();
        }

        lock (_stderr)
        {
            stderr = _stderr.ToString();
        }

        return new BeemeshRunResult(_timedOut ? -1 : _process.ExitCode, stdout, stderr, _timedOut, _clock.Elapsed);
    }

    /// <summary>Kills the process tree if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Kill();
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private void Append(StringBuilder buffer, string? line, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }

        lock (buffer)
        {
            buffer.Append(line).Append('\n');
        }
    }
}
