using System.Text;

namespace Beemesh.Linearizability.Tests;

/// <summary>The JSON-lines history format: round trip, the documented example, and errors that name the line.</summary>
public sealed class HistoryFileTests
{
    [Fact]
    public void TheDocumentedExampleReadsAndChecks()
    {
        const string file = """
            {"process":1,"key":"k","op":"write","value":"v1","call":100,"return":180,"result":"ok"}

            {"process":2,"key":"k","op":"read","call":150,"return":190,"result":"ok","value":"v1","etag":"3"}
            {"process":2,"key":"k","op":"cas","expect":"3","value":"v2","call":200,"return":260,"result":"mismatch"}
            {"process":3,"key":"k","op":"delete","call":210,"result":"unknown"}
            """;
        List<KvOperation> history = HistoryFile.Read(new StringReader(file));
        Assert.Equal(4, history.Count);
        Assert.Equal([1L, 3, 4, 5], history.Select(o => o.Id));
        Assert.Equal(KvOperation.Read("k", 150, 190, "v1", "3", process: 2) with { Id = 3 }, history[1]);
        Assert.Equal(OperationKind.CompareAndSet, history[2].Kind);
        Assert.Equal("3", history[2].ExpectedEtag);
        Assert.Equal(OperationOutcome.Unknown, history[3].Outcome);

        // The mismatch is explained only by the unknown delete having run between the read and the cas.
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
        Assert.Equal(CheckOutcome.NotLinearizable, LinearizabilityChecker.Check(history.Take(3)).Outcome);
    }

    [Fact]
    public void WrittenHistoriesReadBackEqual()
    {
        List<KvOperation> history = SequentialHistory.Generate(7, maxOperations: 200, minOperations: 200);
        history.Add(KvOperation.Write("k\"\n", 1, 2, "ünïcode \u2028", OperationOutcome.Failed, process: -4) with { Id = history.Count + 1 });
        var text = new StringWriter();
        HistoryFile.Write(text, history);
        List<KvOperation> back = HistoryFile.Read(new StringReader(text.ToString()));
        // Unknown operations have no return time in the file.
        Assert.Equal(history.Select(o => o.Outcome == OperationOutcome.Unknown ? o with { ReturnTime = long.MaxValue } : o), back);
        Assert.Equal(history.Count, text.ToString().Count(c => c == '\n'));
    }

    [Fact]
    public void FilesAreReadAndWritten()
    {
        string path = Path.Combine(Path.GetTempPath(), $"beemesh-history-{Guid.NewGuid():N}.jsonl");
        try
        {
            KvOperation[] history = [KvOperation.Write("k", 0, 1, "a") with { Id = 1 }, KvOperation.Read("k", 2, 3, "a") with { Id = 2 }];
            HistoryFile.WriteFile(path, history);
            Assert.Equal(history, HistoryFile.ReadFile(path));
            Assert.False(File.ReadAllBytes(path).AsSpan().StartsWith(Encoding.UTF8.Preamble));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("not json", "line 2: not JSON")]
    [InlineData("[1]", "line 2: not a JSON object")]
    [InlineData("""{"key":"k","op":"write","value":"v","call":1,"return":2,"result":"ok","valeu":"x"}""", "line 2: unknown field \"valeu\"")]
    [InlineData("""{"key":"k","op":"update","value":"v","call":1,"return":2,"result":"ok"}""", "line 2: op \"update\" is not")]
    [InlineData("""{"key":"k","op":"write","value":"v","call":1,"return":2,"result":"timeout"}""", "line 2: result \"timeout\" is not")]
    [InlineData("""{"key":"k","op":"write","value":"v","return":2,"result":"ok"}""", "line 2: \"call\" is missing")]
    [InlineData("""{"key":"k","op":"write","value":"v","call":1,"result":"ok"}""", "line 2: \"return\" is missing")]
    [InlineData("""{"key":"k","op":"write","value":"v","call":1.5,"return":2,"result":"ok"}""", "line 2: \"call\" is not an integer")]
    [InlineData("""{"key":"k","op":"write","value":"v","call":1,"return":2,"result":"ok","process":99999999999}""", "line 2: \"process\" is not an integer")]
    [InlineData("""{"key":7,"op":"write","value":"v","call":1,"return":2,"result":"ok"}""", "line 2: \"key\" is not a string")]
    [InlineData("""{"op":"write","value":"v","call":1,"return":2,"result":"ok"}""", "line 2: \"key\" is missing")]
    [InlineData("""{"key":"k","op":"cas","value":"v","call":1,"return":2,"result":"ok"}""", "needs an expected ETag")]
    [InlineData("""{"key":"k","op":"write","value":"v","call":3,"return":2,"result":"ok"}""", "returns before it is called")]
    [InlineData("""{"key":"k","op":"write","call":1,"return":2,"result":"ok"}""", "a write needs a value")]
    public void BadLinesAreRefusedNamingTheLine(string line, string message)
    {
        string file = """{"key":"k","op":"read","call":0,"return":1,"result":"ok"}""" + "\n" + line + "\n";
        var error = Assert.Throws<FormatException>(() => HistoryFile.Read(new StringReader(file)));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("line 2: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheRecorderKeepsEveryOperationFromEveryThread()
    {
        var recorder = new HistoryRecorder();
        Parallel.For(0, 8, p =>
        {
            for (int i = 0; i < 100; i++)
            {
                long call = HistoryRecorder.Now;
                recorder.Record(KvOperation.Write("k" + p, call, HistoryRecorder.Now, $"{p}-{i}", process: p));
            }
        });
        IReadOnlyList<KvOperation> history = recorder.Operations;
        Assert.Equal(800, history.Count);
        Assert.Equal(Enumerable.Range(1, 800).Select(i => (long)i), history.Select(o => o.Id).Order());
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
        Assert.Throws<ArgumentException>(() => recorder.Record(KvOperation.Write("k", 5, 4, "v")));
    }
}
