using Beemesh.Fuzz;

// beemesh-fuzz TARGET                      run under afl-fuzz (input on stdin / the file AFL names)
// beemesh-fuzz replay TARGET [COUNT] [SEED] the seeds plus COUNT mutations in-process, one summary line
// beemesh-fuzz list                         the targets
const string usage = "usage: beemesh-fuzz TARGET | replay TARGET [COUNT] [SEED] | list";
string corpus = Path.Combine(AppContext.BaseDirectory, "corpus");

if (args.Length == 1 && args[0] == "list")
{
    foreach (string name in FuzzTarget.All.Keys)
    {
        Console.WriteLine(name);
    }

    return 0;
}

if (args.Length >= 2 && args[0] == "replay" && FuzzTarget.All.TryGetValue(args[1], out var makeReplayed))
{
    int count = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10_000;
    int seed = args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 1;
    FuzzTarget target = makeReplayed();
    ReplayResult result = Replay.Run(target, Replay.Seeds(corpus, target.Name), count, seed);
    foreach (string finding in result.Findings)
    {
        Console.Error.WriteLine(finding);
    }

    Console.WriteLine($"{target.Name} {result} {target.Activity}".TrimEnd());
    return result.Findings.Count == 0 ? 0 : 1;
}

if (args.Length == 1 && FuzzTarget.All.TryGetValue(args[0], out var make))
{
    // Instrumented code may only run inside Run: the coverage map it writes is set up there.
    FuzzTarget? target = null;
    SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
    {
        target ??= make();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        try
        {
            target.Run(copy.ToArray());
        }
        catch (Exception e) when (target.IsDocumented(e))
        {
            // A documented refusal is the parser working.
        }
    });
    return 0;
}

Console.Error.WriteLine(usage);
return 2;
