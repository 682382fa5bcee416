namespace Beemesh.LoadTests.MeshBench;

/// <summary>Command line of <c>beemesh-loadtests mesh-bench</c>.</summary>
internal sealed class MeshBenchOptions : MeshBenchFlags
{
    public const string Usage = "usage: beemesh-loadtests mesh-bench [--quick] [--busy N] [--out FILE] [--beemesh PATH]";

    // --quick: 3 s measurements and 20 revocations.
    private MeshBenchOptions()
        : base("loadtests/reports/mesh.md")
    {
    }

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
            if (!options.TryTake(args, ref i))
            {
                error.WriteLine($"beemesh-loadtests mesh-bench: unexpected '{args[i]}'");
                error.WriteLine(Usage);
                return null;
            }
        }

        return options;
    }
}
