namespace Beemesh.Linearizability.Tests;

/// <summary>The client journal: an operation cut short (no "done" line) reads back as unknown; bad journals name the problem.</summary>
public sealed class ClientJournalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("journal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void CompletedOperationsReadBackAsEndedAndACallWithoutAnAnswerAsUnknown()
    {
        string path = Path.Combine(_dir, "j");
        using (var journal = new ClientJournal(path))
        {
            long write = journal.Call(KvOperation.Write("k", 10, 0, "v1", OperationOutcome.Unknown, process: 1));
            long read = journal.Call(KvOperation.Read("k", 12, 0, null, process: 2) with { Outcome = OperationOutcome.Unknown });
            journal.Done(read, KvOperation.Read("k", 12, 30, "v1", "5", process: 2));
            journal.Done(write, KvOperation.Write("k", 10, 20, "v1", process: 1));
            journal.Call(KvOperation.CompareAndSet("k", 40, 0, "5", "v2", OperationOutcome.Unknown, process: 2));
        }

        List<KvOperation> history = ClientJournal.ReadFile(path);
        Assert.Equal(3, history.Count);
        Assert.Equal(KvOperation.Write("k", 10, 20, "v1", process: 1), history[0] with { Id = 0 });
        Assert.Equal(KvOperation.Read("k", 12, 30, "v1", "5", process: 2), history[1] with { Id = 0 });
        Assert.Equal(OperationOutcome.Unknown, history[2].Outcome);
        Assert.Equal("v2", history[2].Value);
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void ALastLineCutShortIsSkippedAndAJournalWrittenTwiceKeepsNumbering()
    {
        string path = Path.Combine(_dir, "j");
        using (var journal = new ClientJournal(path))
        {
            long n = journal.Call(KvOperation.Write("k", 1, 0, "v1", OperationOutcome.Unknown));
            journal.Done(n, KvOperation.Write("k", 1, 2, "v1"));
        }

        File.AppendAllText(path, "call 2 {\"key\":\"k\",\"op\":\"wri");
        List<KvOperation> history = ClientJournal.ReadFile(path);
        Assert.Equal(OperationOutcome.Ok, Assert.Single(history).Outcome);
    }

    [Theory]
    [InlineData("done 1 {\"key\":\"k\",\"op\":\"write\",\"value\":\"v\",\"call\":1,\"return\":2,\"result\":\"ok\"}\n\n", "done 1 has no call")]
    [InlineData("call 1 {\"key\":\"k\",\"op\":\"write\",\"value\":\"v\",\"call\":1,\"return\":2,\"result\":\"ok\"}\nx\n", "line 1: a call's outcome is unknown")]
    [InlineData("begin 1 {}\n\n", "line 1: not \"call N {...}\"")]
    [InlineData("call 1 {\"key\":\"k\",\"op\":\"write\",\"value\":\"v\",\"call\":1,\"result\":\"unknown\"}\ndone 1 {\"key\":\"k\",\"op\":\"write\",\"value\":\"v\",\"call\":5,\"return\":6,\"result\":\"ok\"}\n\n", "is not the operation of call 1")]
    [InlineData("call 1 {\"key\":\"k\",\"op\":\"read\",\"call\":1,\"result\":\"unknown\"}\ncall 1 {\"key\":\"k\",\"op\":\"read\",\"call\":1,\"result\":\"unknown\"}\n\n", "call 1 is recorded twice")]
    public void BadJournalsAreRefusedNamingTheProblem(string text, string problem)
    {
        var e = Assert.Throws<FormatException>(() => ClientJournal.Read(new StringReader(text)));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }
}
