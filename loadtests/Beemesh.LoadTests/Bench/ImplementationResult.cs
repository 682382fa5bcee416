namespace Beemesh.LoadTests.Bench;

/// <summary>What one implementation achieved: a status line, and a value or an error per metric.</summary>
internal sealed class ImplementationResult(string name)
{
    public string Name { get; } = name;

    public string Version { get; set; } = "";

    /// <summary>"ok", "not built: ...", "failed to start: ...".</summary>
    public string Status { get; set; } = "ok";

    public Dictionary<BenchMetric, double> Values { get; } = [];

    public Dictionary<BenchMetric, string> Errors { get; } = [];

    public List<string> Notes { get; } = [];

    public bool Ran => Status == "ok";

    public double? Value(BenchMetric metric) => Values.TryGetValue(metric, out double v) ? v : null;

    /// <summary>The cell text: the number, or why there is none.</summary>
    public string Cell(BenchMetric metric)
    {
        if (Values.TryGetValue(metric, out double v))
        {
            return v.ToString(metric.Format, System.Globalization.CultureInfo.InvariantCulture);
        }

        if (!Ran)
        {
            return Status.StartsWith("not built", StringComparison.Ordinal) ? "not built" : "failed to start";
        }

        return Errors.TryGetValue(metric, out string? error) ? $"error: {error}" : "n/a";
    }
}
