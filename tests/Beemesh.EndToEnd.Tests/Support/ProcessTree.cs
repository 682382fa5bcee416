using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// Ends a process and everything it started with SIGKILL alone. <see cref="Process.Kill(bool)"/>
/// with the whole tree sends each process SIGSTOP, lists its children, and only then SIGKILL: a
/// process it stopped and never killed (the listing failed, or the test host ended in between)
/// stays stopped for ever, and a test's <c>sleep 600</c> guest was found so. Here no process is
/// ever stopped: the tree is listed from <c>/proc</c> first, then every process in it is killed.
/// A guest of <c>beemesh run</c> is in its own PID namespace, which ends with its init. Every
/// fixture here and the benchmark harness (which links this file) end their trees through it: a
/// tree-kill cut off half-way (the process exiting, an exception) then leaves at worst a running
/// process, never a stopped one.
/// </summary>
internal static partial class ProcessTree
{
    private const int SigKill = 9;

    /// <summary>
    /// <paramref name="pid"/> and its descendants now, parents before children, as <c>/proc</c>
    /// shows them (the processes of other PID namespaces included, by their pid here).
    /// </summary>
    public static List<int> Of(int pid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (string entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int child) && ParentOf(child) is int parent)
            {
                if (!children.TryGetValue(parent, out List<int>? list))
                {
                    children[parent] = list = [];
                }

                list.Add(child);
            }
        }

        var tree = new List<int> { pid };
        for (int i = 0; i < tree.Count; i++)
        {
            if (children.TryGetValue(tree[i], out List<int>? list))
            {
                tree.AddRange(list.Where(c => !tree.Contains(c)));
            }
        }

        return tree;
    }

    /// <summary>
    /// SIGKILLs <paramref name="pid"/> and every descendant it has now (listed before any is killed);
    /// processes already gone are skipped. Returns the pids signalled.
    /// </summary>
    public static List<int> Kill(int pid)
    {
        List<int> tree = Of(pid);
        foreach (int p in tree)
        {
            _ = kill(p, SigKill); // ESRCH: gone already
        }

        return tree;
    }

    /// <summary>SIGKILLs the tree of <paramref name="process"/> when it still runs.</summary>
    public static void Kill(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        try
        {
            if (process.HasExited)
            {
                return;
            }

            Kill(process.Id);
        }
        catch (InvalidOperationException)
        {
            // Never started, or already reaped.
        }
    }

    /// <summary>The state letter of <paramref name="pid"/> (<c>R</c>, <c>S</c>, <c>T</c>, <c>Z</c>, ...), or null when it is gone.</summary>
    public static char? StateOf(int pid) => Stat(pid) is { } fields ? fields[0][0] : null;

    private static int? ParentOf(int pid) =>
        Stat(pid) is { } fields && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int parent) ? parent : null;

    // The fields of /proc/PID/stat after the command name: state, ppid, ...
    private static string[]? Stat(int pid)
    {
        try
        {
            string text = File.ReadAllText($"/proc/{pid}/stat");
            int end = text.LastIndexOf(')');
            return end < 0 ? null : text[(end + 2)..].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
