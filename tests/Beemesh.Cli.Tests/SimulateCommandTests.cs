using System.CommandLine;
using Beemesh.Cli.Commands;

namespace Beemesh.Cli.Tests;

public sealed class SimulateCommandTests
{
    [Theory]
    [InlineData("--nodes 1", "beemesh simulate: invalid --nodes '1': expected a whole number from 2 to 1,000,000")]
    [InlineData("--nodes many", "beemesh simulate: invalid --nodes 'many': expected a whole number from 2 to 1,000,000")]
    [InlineData("--nodes 100 --latency 50-10", "beemesh simulate: invalid --latency '50-10': expected MIN-MAX in milliseconds with 1 <= MIN <= MAX <= 10000, e.g. 10-50")]
    [InlineData("--nodes 100 --latency 10", "beemesh simulate: invalid --latency '10': expected MIN-MAX in milliseconds with 1 <= MIN <= MAX <= 10000, e.g. 10-50")]
    [InlineData("--nodes 100 --loss 1.5", "beemesh simulate: invalid --loss '1.5': expected a fraction from 0 to 0.99 or a percentage such as 10%")]
    [InlineData("--nodes 100 --crash -0.1", "beemesh simulate: invalid --crash '-0.1': expected a fraction from 0 to 0.99 or a percentage such as 10%")]
    [InlineData("--nodes 100 --crash 60% --partition 50%", "beemesh simulate: invalid --crash and --partition: together they must leave some nodes live and connected (sum at most 0.99)")]
    [InlineData("--nodes 100 --seed x", "beemesh simulate: invalid --seed 'x': expected a 32-bit integer")]
    [InlineData("--nodes 100 --loss-model udp", "beemesh simulate: invalid --loss-model 'udp': expected tcp or drop")]
    [InlineData("--nodes 100 --publishers 101", "beemesh simulate: invalid --publishers '101': expected a whole number from 0 to the number of nodes")]
    [InlineData("--nodes 100 --publishers two", "beemesh simulate: invalid --publishers 'two': expected a whole number from 0 to the number of nodes")]
    public async Task BadArgumentsExitTwoWithOneClearLine(string args, string expected)
    {
        var (exit, output, error) = await RunAsync(args.Split(' '));
        Assert.Equal(2, exit);
        Assert.Empty(output);
        Assert.Equal(expected + "\n", error);
    }

    [Fact]
    public async Task MissingNodesIsAParseError()
    {
        var (exit, _, error) = await RunAsync("--loss", "0.1");
        Assert.NotEqual(0, exit);
        Assert.Contains("--nodes", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PrintsTheSevenLinesAndTheSameForTheSameSeed()
    {
        var first = await RunAsync("--nodes", "200", "--latency", "5-20", "--loss", "5%", "--seed", "3", "--quiet");
        var second = await RunAsync("--nodes", "200", "--latency", "5-20", "--loss", "0.05", "--seed", "3", "--quiet");
        Assert.Equal(0, first.Exit);
        Assert.Equal(first.Out, second.Out);
        string[] lines = first.Out.TrimEnd('\n').Split('\n');
        Assert.Equal(7, lines.Length);
        Assert.Matches(@"^50%: \d+\.\d\d s$", lines[0]);
        Assert.Matches(@"^100%: \d+\.\d\d s \(200 of 200 live nodes\)$", lines[3]);
        Assert.StartsWith("payload copies per node: ", lines[4], StringComparison.Ordinal);
        Assert.StartsWith("control messages per node: ", lines[5], StringComparison.Ordinal);
        Assert.StartsWith("false suspicions: ", lines[6], StringComparison.Ordinal);
        Assert.Empty(first.Err);
    }

    [Fact]
    public async Task DetailsAddTheSentCopiesAndTheLossModelIsChosenByName()
    {
        var tcp = await RunAsync("--nodes", "200", "--loss", "0.2", "--seed", "3", "--quiet", "--details");
        var drop = await RunAsync("--nodes", "200", "--loss", "0.2", "--loss-model", "drop", "--seed", "3", "--quiet", "--details");
        var byDefault = await RunAsync("--nodes", "200", "--loss", "0.2", "--loss-model", "tcp", "--seed", "3", "--quiet", "--details");
        Assert.Equal(0, tcp.Exit);
        Assert.Equal(0, drop.Exit);
        Assert.Equal(tcp.Out, byDefault.Out);
        Assert.NotEqual(tcp.Out, drop.Out);
        string[] lines = drop.Out.TrimEnd('\n').Split('\n');
        Assert.Equal(11, lines.Length);
        Assert.Matches(@"^payload sends per node: \d+\.\d\d$", lines[7]);
        Assert.Matches(@"^first copies per node: \d+\.\d\d push, \d+\.\d\d graft answer, \d+\.\d\d digest repair$", lines[8]);
        Assert.Matches(@"^duplicates per node: \d+\.\d\d push on a late link, \d+\.\d\d push from a late sender, \d+\.\d\d push on time, \d+\.\d\d graft answer, \d+\.\d\d digest repair, \d+\.\d\d still on the way$", lines[9]);
        Assert.Matches(@"^tree changes per node: \d+\.\d\d GRAFT, \d+\.\d\d PRUNE sent$", lines[10]);
    }

    [Fact]
    public async Task ProgressBarGoesToStderr()
    {
        var run = await RunAsync("--nodes", "100", "--seed", "1");
        Assert.Equal(0, run.Exit);
        Assert.Contains("100%", run.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("[", run.Out, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var root = new RootCommand("test") { SimulateCommand.Create() };
        int exit = await root.Parse(["simulate", .. args]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }
}
