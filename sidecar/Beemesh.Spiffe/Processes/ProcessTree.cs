namespace Beemesh.Spiffe.Processes;

/// <summary>Ancestry questions answered from <c>/proc</c>.</summary>
public static class ProcessTree
{
    // Bounds the walk if /proc shows a cycle; far deeper than any real process tree.
    private const int MaxDepth = 256;

    /// <summary>
    /// True when <paramref name="processId"/> is <paramref name="ancestorId"/> itself or one of its
    /// descendants (following parent pids in <c>/proc/PID/stat</c>).
    /// </summary>
    public static bool IsSelfOrDescendant(int processId, int ancestorId, string procRoot = "/proc")
    {
        int pid = processId;
        for (int depth = 0; depth < MaxDepth && pid > 0; depth++)
        {
            if (pid == ancestorId)
            {
                return true;
            }

            if (pid == 1 || ProcessStat.Read(pid, procRoot) is not { } stat)
            {
                return false;
            }

            pid = stat.ParentProcessId;
        }

        return false;
    }
}
