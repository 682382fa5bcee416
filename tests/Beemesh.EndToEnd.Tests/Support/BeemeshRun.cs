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
    private TaskCompletionSource _lineWritten = new(TaskCreationOptions.RunContinuationsAsynchronously);
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
    /// <param name="keepStdin">Leave the guest's standard input open for <see cref="SendLineAsync"/> (closed at once otherwise).</param>
    public static BeemeshRun Start(IEnumerable<string> flags, string script, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null, string? networkNamespace = null, bool keepStdin = false)
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
        if (!keepStdin)
        {
            process.StandardInput.Close();
        }

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

    /// <summary>
    /// Writes <paramref name="line"/> to the guest's standard input (started with <c>keepStdin</c>): a
    /// go-ahead the guest blocks on with <c>read</c> instead of polling for a condition the test can see.
    /// </summary>
    public async Task SendLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
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
    /// <param name="timeout">How long to wait at the most (a cap for a broken build, not a measured bound).</param>
    public Task<bool> WaitForLineAsync(string prefix, TimeSpan timeout) =>
        WaitUntilAsync(run => HasLine(run.Stdout, prefix), timeout);

    /// <summary>
    /// Waits until <paramref name="done"/> holds, checked again at every line the run writes (stdout or
    /// stderr) and once the run ended with all its output read, never on a timer. False when the run
    /// ended or <paramref name="timeout"/> passed first.
    /// </summary>
    /// <param name="done">The condition on the run's output so far.</param>
    /// <param name="timeout">How long to wait at the most (a cap for a broken build, not a measured bound).</param>
    public async Task<bool> WaitUntilAsync(Func<BeemeshRun, bool> done, TimeSpan timeout)
    {
        using var cap = new CancellationTokenSource(timeout);
        Task ended = EndedAsync();
        while (true)
        {
            Task line = Volatile.Read(ref _lineWritten).Task; // taken before the check, so no line in between is missed
            if (done(this))
            {
                return true;
            }

            if (ended.IsCompleted)
            {
                return done(this);
            }

            try
            {
                await Task.WhenAny(line, ended).WaitAsync(cap.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return done(this);
            }
        }
    }

    /// <summary>Whether <paramref name="text"/> holds a line starting with <paramref name="prefix"/>.</summary>
    public static bool HasLine(string text, string prefix) => text.Split('\n').Any(l => l.StartsWith(prefix, StringComparison.Ordinal));

    // The process exited and both of its pipes are read to the end (or it exited and a child holds them).
    private async Task EndedAsync()
    {
        await _process.WaitForExitAsync().ConfigureAwait(false);
        await Task.WhenAny(Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task), Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
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

    /// <summary>
    /// Kills the process tree now (as a crash would; SIGKILL only, nothing is left stopped: see
    /// <see cref="ProcessTree"/>); output collected so far stays readable.
    /// </summary>
    public void Kill() => ProcessTree.Kill(_process);

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

        // Wake the waiters of this line and arm the signal for the next one.
        Interlocked.Exchange(ref _lineWritten, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
