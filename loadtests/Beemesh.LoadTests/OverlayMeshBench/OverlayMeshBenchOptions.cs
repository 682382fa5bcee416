using System.Globalization;

namespace Beemesh.LoadTests.OverlayMeshBench;

/// <summary>Command line of <c>beemesh-loadtests overlay-mesh-bench</c>.</summary>
internal sealed class OverlayMeshBenchOptions : Beemesh.LoadTests.MeshBench.MeshBenchFlags
{
    public const string Usage = "usage: beemesh-loadtests overlay-mesh-bench [--quick] [--nodes N] [--seconds S] [--rounds R] [--samples K] [--busy N] [--out FILE] [--beemesh PATH]";

    // --quick: 3 s measurements, one round, 3 first-call samples.
    private OverlayMeshBenchOptions()
        : base("loadtests/reports/overlay-mesh.md")
    {
    }

    /// <summary>Node namespaces with an agent each (2 or more); the client is on the first, the server on the last.</summary>
    public int Nodes { get; private set; } = 2;

    /// <summary>Length of each throughput and latency measurement, seconds.</summary>
    public int Seconds => _seconds ?? (Quick ? 3 : 10);

    /// <summary>
    /// Rounds of the throughput and latency measurements: each round measures every path once, so
    /// the paths take turns and a burst of load from elsewhere does not land on one path only.
    /// </summary>
    public int Rounds => _rounds ?? (Quick ? 1 : 3);

    /// <summary>Samples of the time from a workload's start to the first successful call.</summary>
    public int Samples => _samples ?? (Quick ? 3 : 10);

    /// <summary>Requests per second of the latency measurement.</summary>
    public const int RequestRate = 1000;

    private int? _seconds;
    private int? _samples;
    private int? _rounds;

    public static OverlayMeshBenchOptions? Parse(IReadOnlyList<string> args, TextWriter error)
    {
        var options = new OverlayMeshBenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--nodes" when i + 1 < args.Count && Count(args[i + 1], 2, 8) is { } nodes:
                    options.Nodes = nodes;
                    i++;
                    break;
                case "--seconds" when i + 1 < args.Count && Count(args[i + 1], 1, 600) is { } seconds:
                    options._seconds = seconds;
                    i++;
                    break;
                case "--rounds" when i + 1 < args.Count && Count(args[i + 1], 1, 100) is { } rounds:
                    options._rounds = rounds;
                    i++;
                    break;
                case "--samples" when i + 1 < args.Count && Count(args[i + 1], 1, 1000) is { } samples:
                    options._samples = samples;
                    i++;
                    break;
                default:
                    if (options.TryTake(args, ref i))
                    {
                        break;
                    }

                    error.WriteLine($"beemesh-loadtests overlay-mesh-bench: unexpected '{args[i]}' (--nodes takes 2-8, --seconds 1-600, --rounds 1-100, --samples 1-1000)");
                    error.WriteLine(Usage);
                    return null;
            }
        }

        return options;
    }

    private static int? Count(string text, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max ? value : null;
}
