using System.Globalization;

namespace Beemesh.Spiffe.Processes;

/// <summary>
/// The fields of <c>/proc/PID/stat</c> that identify a process: its parent and its start time
/// (field 22, clock ticks since boot). A pid number is reused once its process is gone; the pair
/// (pid, start time) is not, so it names one process for as long as the machine runs.
/// </summary>
/// <param name="ParentProcessId">Field 4, the parent's pid (0 for the top of the pid namespace).</param>
/// <param name="StartTime">Field 22, the start time in clock ticks after boot.</param>
public readonly record struct ProcessStat(int ParentProcessId, ulong StartTime)
{
    /// <summary>
    /// Parses the text of a <c>/proc/PID/stat</c> file; null when it is not in that format.
    /// The command name (field 2) is in parentheses and may itself hold spaces and ')', so fields
    /// are counted from the last ')'.
    /// </summary>
    public static ProcessStat? Parse(ReadOnlySpan<char> text)
    {
        int close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        // After ')': " S PPID PGRP ..." — field 3 is the state, field 4 the parent, field 22 the start time.
        ReadOnlySpan<char> rest = text[(close + 1)..];
        int field = 2;
        int? parent = null;
        foreach (Range range in rest.Split(' '))
        {
            ReadOnlySpan<char> value = rest[range];
            if (value.IsEmpty)
            {
                continue;
            }

            field++;
            if (field == 4)
            {
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int ppid))
                {
                    return null;
                }

                parent = ppid;
            }
            else if (field == 22)
            {
                return parent is { } p && ulong.TryParse(value.TrimEnd('\n'), NumberStyles.None, CultureInfo.InvariantCulture, out ulong start)
                    ? new ProcessStat(p, start)
                    : null;
            }
        }

        return null;
    }

    /// <summary>Reads and parses <c>PROCROOT/PID/stat</c>; null when the process does not exist or the file is unreadable.</summary>
    public static ProcessStat? Read(int processId, string procRoot = "/proc")
    {
        if (processId <= 0)
        {
            return null;
        }

        try
        {
            return Parse(File.ReadAllText(Path.Combine(procRoot, processId.ToString(CultureInfo.InvariantCulture), "stat")));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
