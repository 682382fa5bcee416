using System.Globalization;

namespace Beemesh.LoadTests.StateBench;

/// <summary>Reads the table <c>strace -c</c> writes: the total number of calls it counted.</summary>
internal static class StraceSummary
{
    /// <summary>The sum of the <c>calls</c> column over every syscall row (the <c>total</c> row excluded).</summary>
    public static long Calls(string summary)
    {
        long calls = 0;
        foreach (string line in summary.Split('\n'))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // % time, seconds, usecs/call, calls, [errors,] syscall
            if (fields.Length < 5 || fields[^1] == "total" || fields[^1] == "syscall"
                || !double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out _)
                || !long.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out long count))
            {
                continue;
            }

            calls += count;
        }

        return calls;
    }
}
