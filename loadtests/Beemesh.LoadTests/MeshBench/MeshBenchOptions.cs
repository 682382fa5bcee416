namespace Beemesh.LoadTests.MeshBench;

/// <summary>Command line of <c>beemesh-loadtests mesh-bench</c>.</summary>
internal sealed class MeshBenchOptions
{
    public const string Usage = "usage: beemesh-loadtests mesh-bench [--quick] [--out FILE] [--beemesh PATH]";

    /// <summary>Report path (default loadtests/reports/mesh.md).</summary>
    public string OutPath { get; private set; } = "loadtests/reports/mesh.md";

    /// <summary>Short measurements (3 s, 20 revocations): indicative only.</summary>
    public bool Quick { get; private set; }

    /// <summary>The beemesh CLI (default: next to this binary).</summary>
    public string BeemeshPath { get; private set; } = Path.Combine(AppContext.BaseDirectory, "beemesh");

    public int ThroughputSeconds => Quick ? 3 : 10;

    public int LatencySeconds => Quick ? 3 : 10;

    public int ConnectionSeconds => 5;

    public int RevocationTries => Quick ? 20 : 100;

    public const int RequestRate = 1000;

    public const int ConnectionCopies = 4;

    public static MeshBenchOptions? Parse(IReadOnlyList<string> args, TextWriter error)
    {
        var options = new MeshBenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    options.Quick = true;
                    break;
                case "--out" when i + 1 < args.Count:
                    options.OutPath = args[++i];
                    break;
                case "--beemesh" when i + 1 < args.Count:
                    options.BeemeshPath = Path.GetFullPath(args[++i]);
                    break;
                default:
                    error.WriteLine($"beemesh-loadtests mesh-bench: unexpected '{args[i]}'");
                    error.WriteLine(Usage);
                    return null;
            }
        }

        return options;
    }
}
