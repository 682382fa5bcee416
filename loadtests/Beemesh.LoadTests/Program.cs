using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using Beemesh.LoadTests.Bench;
using Beemesh.LoadTests.Clients;
using Beemesh.LoadTests.MeshBench;
using Beemesh.LoadTests.OverlayMeshBench;
using Beemesh.LoadTests.Scenarios;
using Beemesh.LoadTests.StateBench;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // First Ctrl-C: stop measuring and clean up; a second one exits at once (guards still clean up).
    if (!cancel.IsCancellationRequested)
    {
        e.Cancel = true;
        cancel.Cancel();
    }
};
using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancel.Cancel();
});
AppDomain.CurrentDomain.ProcessExit += (_, _) => ChildProcesses.KillAll();

if (args.Length == 0)
{
    return Usage();
}

try
{
    return args[0] switch
    {
        "bench" => await Bench(args[1..], cancel.Token),
        "mesh-bench" => await MeshBenchCommand(args[1..], cancel.Token),
        "overlay-mesh-bench" => await OverlayMeshBenchCommand(args[1..], cancel.Token),
        "state-bench" => await StateBenchCommand(args[1..], cancel.Token),
        "kv-client" when args.Length is 7 or 8 => PrintStats(KvLoad.Run(
            args[1], args[2], args[3], TimeSpan.FromSeconds(Int(args[4])), Int(args[5]), Percent(args[6]), cancel.Token, args.Length == 8 ? Count(args[7]) : 1)),
        "nxdomain-server" when args.Length == 3 => await NxDomainServer.RunAsync(Address(args[1]), Int(args[2]), cancel.Token),
        "first-call-client" when args.Length == 4 => await FirstCallClient.RunAsync(args[1], Int(args[2]), TimeSpan.FromSeconds(Int(args[3])), Console.Out, cancel.Token),
        "netstack-index" when args.Length <= 2 => WriteIndex(args.Length == 2 ? args[1] : Path.Combine("loadtests", "reports")),
        "rate-client" when args.Length == 5 => PrintStats(RateClient.Run(args[1], Int(args[2]), TimeSpan.FromSeconds(Int(args[3])), Int(args[4]), cancel.Token)),
        "conn-client" when args.Length == 5 => PrintStats(NewConnectionClient.Run(args[1], Int(args[2]), TimeSpan.FromSeconds(Int(args[3])), Int(args[4]), cancel.Token)),
        "echo-server" when args.Length == 3 => await EchoServer.RunAsync(Address(args[1]), Int(args[2]), cancel.Token),
        "connect-client" when args.Length is 4 or 5 => PrintStats(ConnectClient.Run(
            Address(args[1]), Int(args[2]), TimeSpan.FromSeconds(Int(args[3])), args.Length == 5 ? Int(args[4]) : 4, cancel.Token)),
        "pingpong-client" when args.Length == 4 => PrintStats(PingPongClient.Run(
            Address(args[1]), Int(args[2]), TimeSpan.FromSeconds(Int(args[3])), cancel.Token)),
        "hold-client" when args.Length == 4 => await HoldClient.RunAsync(Address(args[1]), Int(args[2]), Int(args[3]), Console.Out, cancel.Token),
        _ => Usage(),
    };
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"beemesh-loadtests: {ex.Message}");
    return 2;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("beemesh-loadtests: interrupted; every started process and namespace was stopped");
    return 130;
}
finally
{
    ChildProcesses.KillAll();
}

static async Task<int> Bench(string[] benchArgs, CancellationToken token)
{
    BenchOptions? options = BenchOptions.Parse(benchArgs, Console.Error);
    if (options is null)
    {
        return 2;
    }

    var log = new CommandLog();
    MachineInfo machine = MachineInfo.Collect();
    IReadOnlyList<ImplementationResult> results = await new BenchRunner(options, log, Console.Error).RunAsync(token);
    string? label = null;
    if (results.All(static r => r.Name != "beemesh" || !r.Ran))
    {
        label = options.Quick
            ? "Sample from a --quick run: reference implementations only, beemesh-slirp not measured. Indicative numbers, not a benchmark result."
            : "beemesh-slirp not measured in this run: reference implementations only.";
    }
    else if (options.Quick)
    {
        label = "Quick run (short measurements): indicative numbers only.";
    }

    string report = MarkdownReport.Build(machine, options, ["bench", .. benchArgs], results, log, label);
    await WriteReportAsync(options.OutPath, report, token);
    if (NetstackIndex.MtuOf(Path.GetFileName(options.OutPath)) is not null)
    {
        string index = NetstackIndex.Write(Path.GetDirectoryName(Path.GetFullPath(options.OutPath))!);
        Console.Error.WriteLine($"index written to {index}");
    }

    return 0;
}

// Writes a report to PATH (creating its directory), prints it on stdout and says where it went.
static async Task WriteReportAsync(string path, string report, CancellationToken token)
{
    string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
    if (directory is not null)
    {
        Directory.CreateDirectory(directory);
    }

    await File.WriteAllTextAsync(path, report, token);
    Console.WriteLine(report);
    Console.Error.WriteLine($"report written to {path}");
}

static int WriteIndex(string directory)
{
    Console.Error.WriteLine($"index written to {NetstackIndex.Write(directory)}");
    return 0;
}

static async Task<int> MeshBenchCommand(string[] meshArgs, CancellationToken token)
{
    MeshBenchOptions? options = MeshBenchOptions.Parse(meshArgs, Console.Error);
    if (options is null)
    {
        return 2;
    }

    var log = new CommandLog();
    MachineInfo machine = MachineInfo.Collect();
    using BusyLoops busy = BusyLoops.Start(options.BusyLoops, log);
    MeshBenchResults results = await new MeshBenchRunner(options, log, Console.Error).RunAsync(token);
    string report = MeshReport.Build(machine, options, ["mesh-bench", .. meshArgs], results, log);
    await WriteReportAsync(options.OutPath, report, token);
    return 0;
}

static async Task<int> OverlayMeshBenchCommand(string[] benchArgs, CancellationToken token)
{
    OverlayMeshBenchOptions? options = OverlayMeshBenchOptions.Parse(benchArgs, Console.Error);
    if (options is null)
    {
        return 2;
    }

    var log = new CommandLog();
    MachineInfo machine = MachineInfo.Collect();
    using BusyLoops busy = BusyLoops.Start(options.BusyLoops, log);
    OverlayMeshResults results = await new OverlayMeshBenchRunner(options, log, Console.Error).RunAsync(token);
    string report = OverlayMeshReport.Build(machine, options, ["overlay-mesh-bench", .. benchArgs], results, log);
    await WriteReportAsync(options.OutPath, report, token);
    return 0;
}

static async Task<int> StateBenchCommand(string[] benchArgs, CancellationToken token)
{
    StateBenchOptions? options = StateBenchOptions.Parse(benchArgs, Console.Error);
    if (options is null)
    {
        return 2;
    }

    var log = new CommandLog();
    MachineInfo machine = MachineInfo.Collect();
    StateBenchResults results = await new StateBenchRunner(options, log, Console.Error).RunAsync(token);
    string report = StateReport.Build(machine, options, ["state-bench", .. benchArgs], results, log);
    await WriteReportAsync(options.OutPath, report, token);
    return 0;
}

static int PrintStats(ScenarioStats stats)
{
    Console.WriteLine(JsonSerializer.Serialize(stats, ScenarioStatsJsonContext.Default.ScenarioStats));
    return 0;
}

static IPAddress Address(string text) =>
    IPAddress.TryParse(text, out IPAddress? address) ? address : throw new FormatException($"not an IP address: '{text}'");

static int Int(string text) =>
    int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
        ? value
        : throw new FormatException($"not a positive integer: '{text}'");

static int Count(string text) =>
    int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value)
        ? value
        : throw new FormatException($"not a count: '{text}'");

static int Percent(string text) =>
    Count(text) is var value && value <= 100 ? value : throw new FormatException($"not a percentage (0-100): '{text}'");

static int Usage()
{
    Console.Error.WriteLine(BenchOptions.Usage);
    Console.Error.WriteLine("       beemesh-loadtests netstack-index [DIR]   (rewrites DIR/netstack.md from DIR/netstack-mtu*.md)");
    Console.Error.WriteLine("       beemesh-loadtests connect-client HOST PORT SECONDS [COPIES]");
    Console.Error.WriteLine("       beemesh-loadtests pingpong-client HOST PORT SECONDS");
    Console.Error.WriteLine("       beemesh-loadtests hold-client HOST PORT COUNT");
    Console.Error.WriteLine("       " + MeshBenchOptions.Usage["usage: ".Length..]);
    Console.Error.WriteLine("       " + OverlayMeshBenchOptions.Usage["usage: ".Length..]);
    Console.Error.WriteLine("       " + StateBenchOptions.Usage["usage: ".Length..]);
    Console.Error.WriteLine("       beemesh-loadtests kv-client dapr-http|etcd|resp URL|HOST:PORT STORE SECONDS CLIENTS READ_PERCENT [WARMUP_SECONDS]");
    Console.Error.WriteLine("       beemesh-loadtests rate-client HOST PORT SECONDS RATE");
    Console.Error.WriteLine("       beemesh-loadtests first-call-client HOST PORT TIMEOUT_SECONDS");
    Console.Error.WriteLine("       beemesh-loadtests nxdomain-server ADDRESS PORT");
    Console.Error.WriteLine("       beemesh-loadtests conn-client HOST PORT SECONDS COPIES");
    Console.Error.WriteLine("       beemesh-loadtests echo-server ADDRESS PORT");
    return 2;
}
