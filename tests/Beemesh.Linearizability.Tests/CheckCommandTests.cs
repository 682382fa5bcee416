namespace Beemesh.Linearizability.Tests;

/// <summary>The command line over history files: verdicts as exit codes, bad input as one line.</summary>
public sealed class CheckCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("beemesh-lincheck-").FullName;

    [Fact]
    public void VerdictsAreExitCodes()
    {
        string good = Write("good.jsonl", [KvOperation.Write("k", 0, 10, "a"), KvOperation.Read("k", 20, 30, "a")]);
        string stale = Write("stale.jsonl", [KvOperation.Write("k", 0, 10, "a"), KvOperation.Write("k", 20, 30, "b"), KvOperation.Read("k", 40, 50, "a")]);
        var many = Enumerable.Range(0, 12).Select(i => KvOperation.Write("k", 0, 100, "v" + i)).Append(KvOperation.Read("k", 200, 210, "nobody"));
        string hard = Write("hard.jsonl", many);

        (int code, string text) = Run(good);
        Assert.Equal(0, code);
        Assert.StartsWith("linearizable: 1 keys, 2 operations", text, StringComparison.Ordinal);
        (code, text) = Run(stale);
        Assert.Equal(1, code);
        Assert.Contains("key k: NOT linearizable", text, StringComparison.Ordinal);
        Assert.Contains("read(k)=\"a\" [40, 50]", text, StringComparison.Ordinal);
        (code, text) = Run(hard, "--max-steps", "5");
        Assert.Equal(3, code);
        Assert.StartsWith("unknown: search limit", text, StringComparison.Ordinal);
    }

    [Fact]
    public void BadUsageAndBadFilesAreOneLineAndExitTwo()
    {
        string bad = Path.Combine(_directory, "bad.jsonl");
        File.WriteAllText(bad, "{\"key\":\"k\",\"op\":\"read\",\"call\":0,\"return\":1,\"result\":\"ok\"}\n{\"key\":\"k\"\n");
        foreach (string[] args in new[] { Array.Empty<string>(), ["--verbose"], ["a", "b"], [bad, "--max-steps", "0"], [bad], [Path.Combine(_directory, "missing.jsonl")] })
        {
            var output = new StringWriter();
            var error = new StringWriter();
            Assert.Equal(2, CheckCommand.Run(args, output, error));
            Assert.Single(error.ToString().TrimEnd('\n').Split('\n'));
            Assert.Equal("", output.ToString());
        }

        var lineError = new StringWriter();
        CheckCommand.Run([bad], TextWriter.Null, lineError);
        Assert.Contains("line 2: not JSON", lineError.ToString(), StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, IEnumerable<KvOperation> history)
    {
        string path = Path.Combine(_directory, name);
        HistoryFile.WriteFile(path, history);
        return path;
    }

    private static (int Code, string Output) Run(params string[] args)
    {
        var output = new StringWriter();
        int code = CheckCommand.Run(args, output, TextWriter.Null);
        return (code, output.ToString());
    }
}
