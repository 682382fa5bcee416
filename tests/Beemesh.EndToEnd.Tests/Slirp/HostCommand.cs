using System.Diagnostics;
using System.Text;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>Starts and runs host programs for the slirp suite; every child can be killed as a tree.</summary>
internal static class HostCommand
{
    /// <summary>Runs a program to completion, killing it (and its children) at the time limit.</summary>
    /// <param name="timeout">How long the program may run.</param>
    /// <param name="file">The program.</param>
    /// <param name="arguments">Its arguments, passed without a shell.</param>
    /// <returns>Exit code and output; exit code -1 when killed at the limit.</returns>
    public static async Task<CommandResult> RunAsync(TimeSpan timeout, string file, params string[] arguments)
    {
        using Process p = Start(file, arguments, out StringBuilder stdout, out StringBuilder stderr);
        using var limit = new CancellationTokenSource(timeout);
        int exit;
        try
        {
            await p.WaitForExitAsync(limit.Token);
            exit = p.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Kill(p);
            exit = -1;
        }

        // WaitForExit() without a limit drains the asynchronous output readers.
        p.WaitForExit();
        lock (stdout)
        {
            lock (stderr)
            {
                return new CommandResult(exit, stdout.ToString(), stderr.ToString());
            }
        }
    }

    /// <summary>Starts a program in the background with its output collected.</summary>
    /// <param name="file">The program.</param>
    /// <param name="arguments">Its arguments, passed without a shell.</param>
    /// <param name="stdout">Receives standard output as it arrives (lock it to read).</param>
    /// <param name="stderr">Receives standard error as it arrives (lock it to read).</param>
    /// <returns>The started process.</returns>
    public static Process Start(string file, IEnumerable<string> arguments, out StringBuilder stdout, out StringBuilder stderr)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        // The implementations must read resolv.conf the same way; the override would hide that.
        info.Environment.Remove("BEEMESH_DNS_UPSTREAM");
        var outText = new StringBuilder();
        var errText = new StringBuilder();
        var p = new Process { StartInfo = info };
        p.OutputDataReceived += (_, e) => Append(outText, e.Data);
        p.ErrorDataReceived += (_, e) => Append(errText, e.Data);
        p.Start();
        p.StandardInput.Close();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        stdout = outText;
        stderr = errText;
        return p;
    }

    /// <summary>Kills a process and all its descendants; never throws.</summary>
    /// <param name="p">The process (may have exited already).</param>
    public static void Kill(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                ProcessTree.Kill(p);
            }

            p.WaitForExit(5000);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // Already gone or never started: nothing left to kill.
        }
    }

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }
    }
}
