using Beemesh.LoadTests.OverlayMeshBench;

namespace Beemesh.LoadTests.Tests.OverlayMeshBench;

/// <summary>The overlay-mesh-bench command line.</summary>
public sealed class OverlayMeshBenchOptionsTests
{
    [Fact]
    public void DefaultsAreTwoNodesThreeRoundsOfTenSecondsTenSamples()
    {
        OverlayMeshBenchOptions options = OverlayMeshBenchOptions.Parse([], TextWriter.Null)!;
        Assert.Equal((2, 3, 10, 10, "loadtests/reports/overlay-mesh.md"), (options.Nodes, options.Rounds, options.Seconds, options.Samples, options.OutPath));
    }

    [Fact]
    public void QuickShortensAndExplicitValuesWin()
    {
        OverlayMeshBenchOptions quick = OverlayMeshBenchOptions.Parse(["--quick"], TextWriter.Null)!;
        Assert.Equal((3, 3, 1), (quick.Seconds, quick.Samples, quick.Rounds));
        OverlayMeshBenchOptions set = OverlayMeshBenchOptions.Parse(["--quick", "--seconds", "1", "--samples", "5", "--nodes", "4", "--rounds", "2", "--out", "x.md"], TextWriter.Null)!;
        Assert.Equal((1, 5, 4, 2, "x.md"), (set.Seconds, set.Samples, set.Nodes, set.Rounds, set.OutPath));
        Assert.Equal(0, quick.BusyLoops);
        Assert.Equal(2, OverlayMeshBenchOptions.Parse(["--busy", "2"], TextWriter.Null)!.BusyLoops);
    }

    [Theory]
    [InlineData("--nodes", "1")]
    [InlineData("--nodes", "9")]
    [InlineData("--seconds", "0")]
    [InlineData("--samples", "-1")]
    [InlineData("--rounds", "0")]
    [InlineData("--samples", "x")]
    [InlineData("--nodes")]
    [InlineData("--fast")]
    [InlineData("--busy", "-1")]
    [InlineData("--busy", "65")]
    [InlineData("--busy")]
    public void BadArgumentsAreRefusedWithTheUsage(params string[] args)
    {
        var error = new StringWriter();
        Assert.Null(OverlayMeshBenchOptions.Parse(args, error));
        Assert.Contains($"unexpected '{args[0]}'", error.ToString(), StringComparison.Ordinal);
        Assert.Contains(OverlayMeshBenchOptions.Usage, error.ToString(), StringComparison.Ordinal);
    }
}
