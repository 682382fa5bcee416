namespace Beemesh.LoadTests.MeshBench;

/// <summary>The flags both mesh benchmarks take: <c>--quick</c>, <c>--out FILE</c>, <c>--beemesh PATH</c>.</summary>
internal abstract class MeshBenchFlags
{
    /// <param name="outPath">The report path when <c>--out</c> is not given.</param>
    protected MeshBenchFlags(string outPath)
    {
        OutPath = outPath;
    }

    /// <summary>Report path (<c>--out</c>).</summary>
    public string OutPath { get; private set; }

    /// <summary>Short measurements (<c>--quick</c>): indicative only.</summary>
    public bool Quick { get; private set; }

    /// <summary>The beemesh CLI (<c>--beemesh</c>; default: next to this binary).</summary>
    public string BeemeshPath { get; private set; } = Path.Combine(AppContext.BaseDirectory, "beemesh");

    /// <summary>
    /// Busy loops (<c>--busy N</c>, 0-64) that run beside the whole measurement, each a <c>yes</c>
    /// writing to /dev/null at normal priority: production nodes are never idle.
    /// </summary>
    public int BusyLoops { get; private set; }

    /// <summary>Takes the flag at <paramref name="i"/> (and its value) when it is one of these; false when it is not.</summary>
    protected bool TryTake(IReadOnlyList<string> args, ref int i)
    {
        switch (args[i])
        {
            case "--quick":
                Quick = true;
                return true;
            case "--out" when i + 1 < args.Count:
                OutPath = args[++i];
                return true;
            case "--busy" when i + 1 < args.Count:
                if (!int.TryParse(args[i + 1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int busy) || busy > 64)
                {
                    return false;
                }

                BusyLoops = busy;
                i++;
                return true;
            case "--beemesh" when i + 1 < args.Count:
                BeemeshPath = Path.GetFullPath(args[++i]);
                return true;
            default:
                return false;
        }
    }
}
