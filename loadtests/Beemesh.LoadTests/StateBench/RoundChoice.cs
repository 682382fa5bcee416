using System.Globalization;

namespace Beemesh.LoadTests.StateBench;

/// <summary>Picks the representative round of a measurement repeated in rounds.</summary>
internal static class RoundChoice
{
    /// <summary>
    /// The index of the round whose value is the median of the measured ones (the lower of the
    /// two middle ones for an even count); a failed round (null) is never chosen unless all failed.
    /// </summary>
    public static int MedianIndex(IReadOnlyList<double?> values)
    {
        int[] measured = [.. Enumerable.Range(0, values.Count).Where(i => values[i] is not null).OrderBy(i => values[i]!.Value).ThenBy(i => i)];
        return measured.Length == 0 ? 0 : measured[(measured.Length - 1) / 2];
    }

    /// <summary>"MIN-MAX" of the measured values, or "failed" when none was measured.</summary>
    public static string Range(IReadOnlyList<double?> values)
    {
        double[] measured = [.. values.Where(static v => v is not null).Select(static v => v!.Value)];
        return measured.Length == 0
            ? "failed"
            : string.Create(CultureInfo.InvariantCulture, $"{measured.Min():0}-{measured.Max():0}");
    }
}
