using System.Globalization;

namespace Beemesh.Agent.Workloads;

/// <summary>
/// Reads a process's start time (<c>/proc/PID/stat</c> field 22, clock ticks since boot): a pid
/// together with its start time names one process for the life of the system, so a recycled pid is
/// told apart from the process that held it before.
/// </summary>
internal static class ProcessStartTime
{
    /// <summary>The start time of <paramref name="pid"/>, or null when there is no such process.</summary>
    public static ulong? Read(string procRoot, int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        string text;
        try
        {
            text = File.ReadAllText(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "stat"));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // proc(5): the command name (field 2) is in parentheses and may hold spaces or ')', so count
        // fields from the last ')'. Field 3 (state) follows it; starttime is field 22. A zombie
        // (state Z) has exited: it is gone for every purpose here.
        int close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        string[] fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        const int startTimeIndex = 22 - 3;
        if (fields.Length <= startTimeIndex || fields[0] is "Z" or "X")
        {
            return null;
        }

        return ulong.TryParse(fields[startTimeIndex], NumberStyles.None, CultureInfo.InvariantCulture, out ulong start) ? start : null;
    }
}
