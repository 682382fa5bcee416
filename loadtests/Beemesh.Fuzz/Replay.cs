using System.Diagnostics;

namespace Beemesh.Fuzz;

/// <summary>What one replay of a target did.</summary>
/// <param name="Executions">Inputs run (seeds plus mutations).</param>
/// <param name="Seeds">Seed inputs among them.</param>
/// <param name="DocumentedRefusals">Inputs refused with a documented exception.</param>
/// <param name="Findings">Inputs that threw anything else: the input (hex) and the exception.</param>
/// <param name="HeapBytesAfter">Managed heap after a full collection at the end.</param>
/// <param name="PeakRssBytes">The process's peak resident set (VmHWM).</param>
public sealed record ReplayResult(long Executions, int Seeds, long DocumentedRefusals, IReadOnlyList<string> Findings, long HeapBytesAfter, long PeakRssBytes)
{
    /// <summary>One line for logs and for the parent process of a replay run in a namespace.</summary>
    public override string ToString() =>
        $"executions={Executions} seeds={Seeds} documented_refusals={DocumentedRefusals} findings={Findings.Count} heap_after={HeapBytesAfter} peak_rss={PeakRssBytes}";
}

/// <summary>Runs a target over its seed corpus and a fixed number of deterministic mutations, in-process.</summary>
public static class Replay
{
    /// <summary>The seed inputs of <paramref name="target"/> under <paramref name="corpusRoot"/>.</summary>
    public static List<byte[]> Seeds(string corpusRoot, string target) =>
        Directory.EnumerateFiles(Path.Combine(corpusRoot, target)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();

    /// <summary>Replays every seed, then <paramref name="mutations"/> mutated inputs from <paramref name="seed"/>.</summary>
    public static ReplayResult Run(FuzzTarget target, IReadOnlyList<byte[]> seeds, int mutations, int seed)
    {
        if (seeds.Count == 0)
        {
            throw new ArgumentException($"no seed inputs for {target.Name}", nameof(seeds));
        }

        var findings = new List<string>();
        long refusals = 0, executions = 0;
        var mutator = new Mutator(seed);
        for (int i = 0; i < seeds.Count + mutations; i++)
        {
            byte[] input = i < seeds.Count ? seeds[i] : mutator.Next(seeds);
            executions++;
            try
            {
                target.Run(input);
            }
            catch (Exception e) when (target.IsDocumented(e))
            {
                refusals++;
            }
            catch (Exception e)
            {
                if (findings.Count < 10)
                {
                    findings.Add($"{Convert.ToHexString(input)}: {e}");
                }
                else
                {
                    findings.Add("(more)");
                    break;
                }
            }
        }

        long heap = GC.GetTotalMemory(forceFullCollection: true);
        return new ReplayResult(executions, seeds.Count, refusals, findings, heap, PeakRss());
    }

    /// <summary>VmHWM of this process in bytes (0 where /proc is not there).</summary>
    public static long PeakRss()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return Process.GetCurrentProcess().PeakWorkingSet64;
        }
    }
}
