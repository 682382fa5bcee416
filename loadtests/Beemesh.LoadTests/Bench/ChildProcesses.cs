using System.Collections.Concurrent;
using System.Diagnostics;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// Every process the harness started and has not yet reaped, so an abort (Ctrl-C, SIGTERM,
/// an exception) can kill them all. Long-lived helpers additionally run under a guard shell
/// that kills them when the harness's pipe closes, which covers the harness being killed.
/// </summary>
internal static class ChildProcesses
{
    private static readonly ConcurrentDictionary<int, Process> s_live = new();

    public static void Track(Process process) => s_live[process.Id] = process;

    public static void Forget(Process process) => s_live.TryRemove(process.Id, out _);

    /// <summary>Kills every tracked process tree; safe to call more than once.</summary>
    public static void KillAll()
    {
        foreach (Process process in s_live.Values)
        {
            try
            {
                if (!process.HasExited)
                {
                    ProcessTree.Kill(process);
                }
            }
            catch (InvalidOperationException)
            {
            }
            catch (System.ComponentModel.Win32Exception)
            {
            }
        }

        s_live.Clear();
    }

    /// <summary>Sends SIGKILL to a pid that is not our direct child (a guarded grandchild).</summary>
    public static void KillPid(int pid)
    {
        if (pid <= 0)
        {
            return;
        }

        try
        {
            using Process process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (ArgumentException)
        {
        }
        catch (InvalidOperationException)
        {
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }

    /// <summary>True while /proc shows the pid alive (not a zombie).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
