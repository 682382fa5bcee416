using System.Text.Json;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.Scenarios;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// Runs one measuring client to completion and reads its result: iperf3 <c>-J</c> for throughput, or
/// a <c>beemesh-loadtests</c> client's JSON stats line. A failure is a null result plus a line in
/// <paramref name="notes"/>, so one broken path does not stop the other measurements.
/// </summary>
internal sealed class BenchClients(CommandLog log, TextWriter progress, List<string> notes, string tool)
{
    /// <summary>Gbit/s received by one iperf3 client run (<c>-J</c> output), or null.</summary>
    public Task<double?> IperfGbpsAsync(string path, IReadOnlyList<string> argv, int seconds, CancellationToken token) =>
        IperfGbpsAsync(path, argv, seconds, log, token);

    /// <summary>As <see cref="IperfGbpsAsync(string, IReadOnlyList{string}, int, CancellationToken)"/>, logging the command to <paramref name="commands"/>.</summary>
    public async Task<double?> IperfGbpsAsync(string path, IReadOnlyList<string> argv, int seconds, CommandLog commands, CancellationToken token)
    {
        progress.WriteLine($"{tool}: throughput, {path}");
        commands.Add("throughput", argv);
        ProcessResult run = await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(seconds + 60), token).ConfigureAwait(false);
        try
        {
            int start = run.StandardOutput.IndexOf('{', StringComparison.Ordinal);
            using JsonDocument json = JsonDocument.Parse(start >= 0 ? run.StandardOutput[start..] : "{}");
            if (json.RootElement.TryGetProperty("error", out JsonElement error))
            {
                throw new InvalidOperationException(error.GetString());
            }

            double bps = json.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
            return bps / 1e9;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            notes.Add($"throughput {path}: failed ({ex.Message}; exit {run.ExitCode}; {Last(run.StandardError)})");
            return null;
        }
    }

    /// <summary>The stats of <paramref name="step"/> from a client's JSON line, or null.</summary>
    public Task<StepStats?> StepAsync(string scope, string path, IReadOnlyList<string> argv, string step, CancellationToken token) =>
        StepAsync(scope, path, argv, step, log, token);

    /// <summary>As <see cref="StepAsync(string, string, IReadOnlyList{string}, string, CancellationToken)"/>, logging the command to <paramref name="commands"/>.</summary>
    public async Task<StepStats?> StepAsync(string scope, string path, IReadOnlyList<string> argv, string step, CommandLog commands, CancellationToken token)
    {
        progress.WriteLine($"{tool}: {scope}, {path}");
        commands.Add(scope, argv);
        ProcessResult run = await ProcessRunner.RunAsync(argv, TimeSpan.FromSeconds(120), token).ConfigureAwait(false);
        string? jsonLine = run.StandardOutput.Split('\n').LastOrDefault(static l => l.TrimStart().StartsWith('{'));
        try
        {
            ScenarioStats stats = JsonSerializer.Deserialize(jsonLine ?? "", ScenarioStatsJsonContext.Default.ScenarioStats)
                ?? throw new JsonException("no stats");
            StepStats stepStats = stats.GetStep(step);
            if (stepStats.FailCount > 0)
            {
                notes.Add($"{scope} {path}: {stepStats.FailCount} of {stepStats.RequestCount} failed (first: {stepStats.FirstFailure})");
            }

            return stepStats;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            notes.Add($"{scope} {path}: failed (exit {run.ExitCode}; {Last(run.StandardError)})");
            return null;
        }
    }

    /// <summary>The last non-empty line of <paramref name="text"/>.</summary>
    public static string Last(string text)
    {
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "no output" : lines[^1];
    }
}
