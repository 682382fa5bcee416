using System.Globalization;
using System.Text;

namespace Beemesh.LoadTests.Bench;

/// <summary>Renders the comparison: a summary table, one table per metric with ratios, notes and the exact commands.</summary>
internal static class MarkdownReport
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    public static string Build(MachineInfo machine, BenchOptions options, IReadOnlyList<string> commandLine, IReadOnlyList<ImplementationResult> results, CommandLog log, string? label)
    {
        var md = new StringBuilder();
        md.AppendLine("# Netstack benchmark: beemesh-slirp vs slirp4netns vs pasta").AppendLine();
        if (label is not null)
        {
            md.AppendLine($"> {label}").AppendLine();
        }

        md.AppendLine($"- Date: {machine.Date}");
        md.AppendLine($"- Machine: {machine.Processors} CPUs ({machine.Cpu}), kernel {machine.Kernel}, .NET {machine.DotNet}");
        md.AppendLine($"- Mode: {(options.Quick ? "**quick**" : "full")}, {options.MeasureDuration.TotalSeconds:0} s per timed measurement, MTU {options.Mtu}");
        md.AppendLine($"- Run: `beemesh-loadtests {string.Join(' ', commandLine)}`");
        foreach (ImplementationResult r in results)
        {
            md.AppendLine($"- {r.Name}: {r.Version}; status: {r.Status}");
        }

        md.AppendLine();
        md.AppendLine("Each implementation gets a fresh network namespace owned by a fresh user namespace; all clients run inside it,");
        md.AppendLine("all servers listen on the host's 127.0.0.1 and are reached through the stack's host-loopback mapping.");
        md.AppendLine("Ratios are beemesh / reference: above 1 is better for rates, below 1 is better for latency and memory.").AppendLine();

        ImplementationResult? beemesh = results.FirstOrDefault(static r => r.Name == "beemesh");
        ImplementationResult? slirp = results.FirstOrDefault(static r => r.Name == "slirp4netns");
        ImplementationResult? pasta = results.FirstOrDefault(static r => r.Name == "pasta");

        md.AppendLine("## Summary").AppendLine();
        md.Append("| metric | unit | better |");
        foreach (ImplementationResult r in results)
        {
            md.Append($" {r.Name} |");
        }

        md.AppendLine(" beemesh / slirp4netns | beemesh / pasta |");
        md.Append("|---|---|---|");
        foreach (ImplementationResult _ in results)
        {
            md.Append("---:|");
        }

        md.AppendLine("---:|---:|");
        foreach (BenchMetric metric in BenchMetric.All)
        {
            md.Append($"| {metric.Title} | {metric.Unit} | {(metric.HigherIsBetter ? "higher" : "lower")} |");
            foreach (ImplementationResult r in results)
            {
                md.Append($" {Escape(r.Cell(metric))} |");
            }

            md.AppendLine($" {Ratio(beemesh, slirp, metric)} | {Ratio(beemesh, pasta, metric)} |");
        }

        md.AppendLine();
        foreach (BenchMetric metric in BenchMetric.All)
        {
            md.AppendLine($"## {metric.Title} ({metric.Unit}, {(metric.HigherIsBetter ? "higher" : "lower")} is better)").AppendLine();
            md.AppendLine(metric.HowMeasured + ".").AppendLine();
            md.AppendLine("| implementation | value | beemesh / this |");
            md.AppendLine("|---|---:|---:|");
            foreach (ImplementationResult r in results)
            {
                string ratio = r.Name == "beemesh" ? "—" : Ratio(beemesh, r, metric);
                md.AppendLine($"| {r.Name} | {Escape(r.Cell(metric))} | {ratio} |");
            }

            md.AppendLine();
        }

        md.AppendLine("## Notes").AppendLine();
        foreach (ImplementationResult r in results)
        {
            if (!r.Ran)
            {
                md.AppendLine($"- {r.Name}: {Escape(r.Status)}");
            }

            foreach (string note in r.Notes)
            {
                md.AppendLine($"- {r.Name}: {Escape(note)}");
            }
        }

        md.AppendLine().AppendLine("## Commands").AppendLine();
        md.AppendLine("In the order they ran (READY_FILE is a temporary file on fd 3; every helper ran under a guard shell that kills it when the harness exits).").AppendLine();
        md.AppendLine("```");
        foreach ((string scope, string command) in log.Entries)
        {
            md.AppendLine($"[{scope}] {command}");
        }

        md.AppendLine("```");
        return md.ToString();
    }

    private static string Ratio(ImplementationResult? numerator, ImplementationResult? denominator, BenchMetric metric)
    {
        double? a = numerator?.Value(metric);
        double? b = denominator?.Value(metric);
        if (a is null || b is null || b.Value == 0)
        {
            return "n/a";
        }

        return (a.Value / b.Value).ToString("0.00", s_inv) + "×";
    }

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
