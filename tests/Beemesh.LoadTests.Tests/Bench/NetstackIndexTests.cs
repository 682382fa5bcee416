using Beemesh.LoadTests.Bench;

namespace Beemesh.LoadTests.Tests.Bench;

/// <summary>
/// The index netstack.md generated from recorded per-MTU reports (two real runs, copied from
/// loadtests/reports) and the hand-assembled index they replaced.
/// </summary>
public sealed class NetstackIndexTests
{
    private static readonly string Recorded = Path.Combine(AppContext.BaseDirectory, "Bench", "Recorded");

    private static (string FileName, string Content) Report(string name) => (name, File.ReadAllText(Path.Combine(Recorded, name)));

    private static string PreviousIndex => File.ReadAllText(Path.Combine(Recorded, "netstack.md"));

    private static string[] SummaryTable(string report) => report.ReplaceLineEndings("\n").Split('\n')
        .SkipWhile(l => l != "## Summary").Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal))
        .Where(l => l.StartsWith('|')).ToArray();

    private static string[] Section(string index, string heading) => index.Split('\n')
        .SkipWhile(l => l != heading).Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal)).ToArray();

    [Fact]
    public void EachMtuGetsItsRunFactsAndItsOwnSummaryTableInMtuOrder()
    {
        var reports = new[] { Report("netstack-mtu65520.md"), Report("netstack-mtu1500.md") };
        string index = NetstackIndex.Build(reports, PreviousIndex);

        Assert.True(index.IndexOf("## MTU 1500\n", StringComparison.Ordinal) < index.IndexOf("## MTU 65520\n", StringComparison.Ordinal));
        foreach (var (name, content) in reports)
        {
            string mtu = name["netstack-mtu".Length..^".md".Length];
            string[] section = Section(index, $"## MTU {mtu}");
            string[] table = SummaryTable(content);
            Assert.Equal(9, table.Length); // header, rule, seven metrics
            Assert.Equal(table, section.Where(l => l.StartsWith('|')));
            Assert.Contains($"- Mode: full, 10 s per timed measurement, MTU {mtu}", section);
            Assert.DoesNotContain(section, l => l.StartsWith("- Run: ", StringComparison.Ordinal));
            Assert.Contains($"[{name}]({name})", index, StringComparison.Ordinal);
        }

        // The two runs differ: a table taken from the wrong report would show.
        Assert.NotEqual(SummaryTable(reports[0].Content), SummaryTable(reports[1].Content));
        Assert.Contains("| TCP throughput, namespace → host | Gbit/s | higher | 3.46 | 0.87 | 17.91 | 5.18× | 20.69× |", Section(index, "## MTU 65520"));
    }

    [Fact]
    public void HandWrittenNotesAreCarriedOverVerbatim()
    {
        string previous = PreviousIndex.ReplaceLineEndings("\n");
        string notes = previous[previous.IndexOf(NetstackIndex.NotesHeading, StringComparison.Ordinal)..].TrimEnd();
        Assert.Contains("segmentation offload", notes, StringComparison.Ordinal);

        string index = NetstackIndex.Build([Report("netstack-mtu1500.md"), Report("netstack-mtu65520.md")], PreviousIndex);
        Assert.EndsWith(notes + "\n", index, StringComparison.Ordinal);
        Assert.Single(index.Split('\n'), l => l == NetstackIndex.NotesHeading);
    }

    [Fact]
    public void RegeneratingTheIndexFromItsOwnOutputChangesNothing()
    {
        var reports = new[] { Report("netstack-mtu1500.md"), Report("netstack-mtu65520.md") };
        string once = NetstackIndex.Build(reports, PreviousIndex);
        Assert.Equal(once, NetstackIndex.Build(reports, once));
    }

    [Fact]
    public void WriteAddsANewMtuAndKeepsTheOthersAndTheNotes()
    {
        string dir = Directory.CreateTempSubdirectory("beemesh-index-").FullName;
        try
        {
            foreach (string name in new[] { "netstack-mtu1500.md", "netstack-mtu65520.md", "netstack.md" })
            {
                File.Copy(Path.Combine(Recorded, name), Path.Combine(dir, name));
            }

            string run9000 = File.ReadAllText(Path.Combine(Recorded, "netstack-mtu1500.md"))
                .Replace("MTU 1500", "MTU 9000", StringComparison.Ordinal).Replace("| 12.58 |", "| 42.42 |", StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(dir, "netstack-mtu9000.md"), run9000);
            File.WriteAllText(Path.Combine(dir, "mesh.md"), "# not a netstack report\n");

            string path = NetstackIndex.Write(dir);

            string index = File.ReadAllText(path);
            Assert.Equal(["## MTU 1500", "## MTU 9000", "## MTU 65520"], index.Split('\n').Where(l => l.StartsWith("## MTU ", StringComparison.Ordinal)));
            Assert.Contains(Section(index, "## MTU 9000"), l => l.Contains("| 42.42 |", StringComparison.Ordinal));
            Assert.DoesNotContain(Section(index, "## MTU 1500"), l => l.Contains("| 42.42 |", StringComparison.Ordinal));
            Assert.Contains(NetstackIndex.NotesHeading, index, StringComparison.Ordinal);
            Assert.DoesNotContain("not a netstack report", index, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void NoReportsYetSaysHowToMakeThem()
    {
        string index = NetstackIndex.Build([("mesh.md", "# x")], previousIndex: null);
        Assert.Contains("No per-MTU report yet", index, StringComparison.Ordinal);
        Assert.DoesNotContain("## MTU", index, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("netstack-mtu1500.md", 1500)]
    [InlineData("netstack-mtu65520.md", 65520)]
    [InlineData("netstack.md", null)]
    [InlineData("netstack-mtu.md", null)]
    [InlineData("netstack-mtu1500.md.bak", null)]
    public void MtuOfReadsOnlyPerMtuReportNames(string name, int? mtu) => Assert.Equal(mtu, NetstackIndex.MtuOf(name));

    [Fact]
    public void BenchWritesThePerMtuReportByDefaultAndNeverTheIndex()
    {
        var error = new StringWriter();
        BenchOptions? options = BenchOptions.Parse(["--mtu", "1500"], error);
        Assert.NotNull(options);
        Assert.Equal(Path.Combine("loadtests", "reports", "netstack-mtu1500.md"), options.OutPath);
        Assert.Equal(Path.Combine("loadtests", "reports", "netstack-mtu65520.md"), BenchOptions.Parse([], error)!.OutPath);

        Assert.Null(BenchOptions.Parse(["--out", "loadtests/reports/netstack.md"], error));
        Assert.Contains("index generated from the per-MTU reports", error.ToString(), StringComparison.Ordinal);
    }
}
