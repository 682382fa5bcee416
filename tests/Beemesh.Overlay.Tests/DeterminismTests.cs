using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

public sealed class DeterminismTests
{
    [Fact]
    public void SameSeedSameOutput()
    {
        var options = new SimulationOptions { Nodes = 400, Loss = 0.1, Crash = 0.1, Seed = 77 };
        string first = new OverlaySimulator(options).Run().Format();
        string second = new OverlaySimulator(options).Run().Format();
        Assert.Equal(first, second);
        Assert.Matches(@"^50%: \d+\.\d\d s\n99%: \d+\.\d\d s\n99\.99%: \d+\.\d\d s\n100%: \d+\.\d\d s \(360 of 360 live nodes\)\npayload copies per node: \d+\.\d\d\ncontrol messages per node: \d+\.\d\nfalse suspicions: \d+\n$", first);
    }

    [Fact]
    public void ThousandsSeparatorsInTheLastLine()
    {
        var report = new SimulationReport
        {
            Seconds = [0.31, 0.52, 0.61, 0.66],
            LiveNodes = 99_700,
            Reached = 99_700,
            PayloadCopiesPerNode = 1.04,
            ControlMessagesPerNode = 5.9,
            FalseSuspicions = 0,
            Events = 1,
            SimulatedSeconds = 1,
        };
        Assert.Equal("50%: 0.31 s\n99%: 0.52 s\n99.99%: 0.61 s\n100%: 0.66 s (99,700 of 99,700 live nodes)\npayload copies per node: 1.04\ncontrol messages per node: 5.9\nfalse suspicions: 0\n", report.Format());
    }
}
