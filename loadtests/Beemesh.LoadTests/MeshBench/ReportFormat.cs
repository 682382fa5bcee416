using System.Globalization;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>Number formatting shared by the mesh reports: invariant culture, "failed" for a missing value.</summary>
internal static class ReportFormat
{
    /// <summary>The value of the <paramref name="p"/>th percentile of an ascending list (nearest rank).</summary>
    public static double Pct(IReadOnlyList<double> sorted, double p)
    {
        int index = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Count - 1)];
    }

    public static string Num(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "failed";

    /// <summary>"1.23x", or "-" when either side is missing.</summary>
    public static string Ratio(double? value, double? baseline) =>
        value is { } v && baseline is { } b && b > 0 ? (v / b).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "-";

    /// <summary>The signed difference ("+12", "-3"), or "-" without a baseline.</summary>
    public static string Added(double value, double? baseline) =>
        baseline is { } b ? (value - b).ToString("+0;-0", CultureInfo.InvariantCulture) : "-";

    public static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
