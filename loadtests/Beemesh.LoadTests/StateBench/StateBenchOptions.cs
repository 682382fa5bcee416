using System.Globalization;
using Beemesh.LoadTests.MeshBench;

namespace Beemesh.LoadTests.StateBench;

/// <summary>Command line of <c>beemesh-loadtests state-bench</c>.</summary>
internal sealed class StateBenchOptions : MeshBenchFlags
{
    public const string Usage = "usage: beemesh-loadtests state-bench [--quick] [--clients N] [--seconds S] [--rounds R] [--out FILE] [--beemesh PATH]";

    private int? _seconds;

    private StateBenchOptions()
        : base("loadtests/reports/state.md")
    {
    }

    /// <summary>Concurrent clients (connections) per measurement, the same for every target.</summary>
    public int Clients { get; private set; } = 16;

    /// <summary>Length of each measurement, after its 1 s warm-up (3 s with --quick, else 10 s).</summary>
    public int Seconds => _seconds ?? (Quick ? 3 : 10);

    /// <summary>Rounds in which the targets take turns (default 3); each figure reported is from the round with the median rate.</summary>
    public int Rounds { get; private set; } = 3;

    /// <summary>Share of reads in the mixed measurement, in percent.</summary>
    public const int ReadPercent = 90;

    public static StateBenchOptions? Parse(IReadOnlyList<string> args, TextWriter error)
    {
        var options = new StateBenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            if (options.TryTake(args, ref i))
            {
                continue;
            }

            if (args[i] is "--clients" or "--seconds" or "--rounds" && i + 1 < args.Count
                && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0)
            {
                if (args[i] == "--clients")
                {
                    options.Clients = value;
                }
                else if (args[i] == "--rounds")
                {
                    options.Rounds = value;
                }
                else
                {
                    options._seconds = value;
                }

                i++;
                continue;
            }

            error.WriteLine($"beemesh-loadtests state-bench: unexpected '{args[i]}'");
            error.WriteLine(Usage);
            return null;
        }

        return options;
    }
}
