using System.Globalization;

namespace Beemesh.LoadTests.StateBench;

/// <summary>Reads the table <c>strace -c</c> writes: calls per syscall.</summary>
internal static class StraceSummary
{
    /// <summary>The <c>calls</c> column of every syscall row (the <c>total</c> row excluded), by syscall name.</summary>
    public static IReadOnlyDictionary<string, long> BySyscall(string summary)
    {
        var calls = new SortedDictionary<string, long>(StringComparer.Ordinal);
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

            calls[fields[^1]] = calls.GetValueOrDefault(fields[^1]) + count;
        }

        return calls;
    }

    /// <summary>The sum of <see cref="BySyscall"/>.</summary>
    public static long Calls(string summary) => BySyscall(summary).Values.Sum();
}
