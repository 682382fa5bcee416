using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Beemesh.LoadTests.Clients;
using Beemesh.LoadTests.Scenarios;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// Measures every implementation in turn, each in its own fresh user+network namespace, with
/// the same host servers and clients, and collects the results for <see cref="MarkdownReport"/>.
/// </summary>
internal sealed class BenchRunner(BenchOptions options, CommandLog log, TextWriter progress)
{
    private const int ConnectCopies = 4;
    private const int HeldConnections = 1000;

    public async Task<IReadOnlyList<ImplementationResult>> RunAsync(CancellationToken cancellationToken)
    {
        string work = Directory.CreateTempSubdirectory("beemesh-bench-").FullName;
        var results = new List<ImplementationResult>();
        try
        {
            foreach (string name in options.Implementations)
            {
                NetstackImplementation impl = Create(name);
                var result = new ImplementationResult(name) { Version = await impl.VersionAsync(cancellationToken).ConfigureAwait(false) };
                results.Add(result);
                if (impl.Unavailable is { } why)
                {
                    result.Status = name == "beemesh" ? $"not built: {why}" : $"failed to start: {why}";
                    progress.WriteLine($"[{name}] {result.Status}");
                    continue;
                }

                try
                {
                    await MeasureAsync(impl, result, work, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // One implementation's trouble must not cost the others their rows.
                    result.Notes.Add($"run aborted: {ex.GetType().Name}: {ex.Message.ReplaceLineEndings(" ")}");
                    progress.WriteLine($"[{name}] run aborted: {ex}");
                }
            }
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        return results;
    }

    private NetstackImplementation Create(string name) => name switch
    {
        "slirp4netns" => new SlirpCompatibleImplementation("slirp4netns", "/usr/bin/slirp4netns", null),
        "pasta" => new PastaImplementation("/usr/bin/pasta"),
        _ => new SlirpCompatibleImplementation(
            "beemesh",
            Path.GetFullPath(options.BeemeshSlirpPath),
            $"{options.BeemeshSlirpPath} missing; run ./scripts/build"),
    };

    private async Task MeasureAsync(NetstackImplementation impl, ImplementationResult result, string work, CancellationToken cancellationToken)
    {
        string name = impl.Name;
        _notes = result.Notes;
        progress.WriteLine($"[{name}] starting in a fresh user+network namespace");
        await using NetworkNamespace ns = await NetworkNamespace.CreateAsync(log, name, cancellationToken).ConfigureAwait(false);
        RunningNetstack stack;
        try
        {
            stack = await impl.StartAsync(ns, options.Mtu, work, log, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            result.Status = $"failed to start: {ex.Message}";
            progress.WriteLine($"[{name}] {result.Status}");
            return;
        }

        await using (stack.ConfigureAwait(false))
        {
            string host = stack.HostLoopbackAddress.ToString();
            progress.WriteLine($"[{name}] ready (pid {stack.Pid}); host loopback is {host} inside the namespace");
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            await Attempt(result, BenchMetric.RssIdle, () => Task.FromResult(RssMiB(stack.Pid))).ConfigureAwait(false);

            IperfServer? iperf = null;
            await Attempt(result, BenchMetric.ThroughputUp, async () =>
            {
                iperf = await IperfServer.StartAsync(work, name, log, cancellationToken).ConfigureAwait(false);
                return await IperfAsync(ns, host, iperf.Port, reverse: false, name, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);
            if (iperf is not null)
            {
                await using (iperf.ConfigureAwait(false))
                {
                    await Attempt(result, BenchMetric.ThroughputDown, () => IperfAsync(ns, host, iperf.Port, reverse: true, name, cancellationToken)).ConfigureAwait(false);
                }
            }
            else
            {
                result.Errors[BenchMetric.ThroughputDown] = result.Errors.GetValueOrDefault(BenchMetric.ThroughputUp, "iperf3 server did not start");
            }

            await using (HostTcpServer acceptClose = HostTcpServer.AcceptAndClose())
            {
                await Attempt(result, BenchMetric.ConnectRate, async () =>
                {
                    ScenarioStats stats = await ClientAsync(ns, name, cancellationToken, "connect-client", host, Str(acceptClose.Port), Str(Seconds), Str(ConnectCopies)).ConfigureAwait(false);
                    StepStats step = stats.GetStep(ConnectClient.StepName);
                    NoteFailures(result, "connect", step);
                    result.Notes.Add($"connect: {step.OkCount} connections, p50 {step.Latency.P50Us:0} µs, p99 {step.Latency.P99Us:0} µs");
                    return step.OkCount / stats.Duration.TotalSeconds;
                }).ConfigureAwait(false);
            }

            await using (HostTcpServer echo = HostTcpServer.Echo())
            {
                StepStats? pingPong = null;
                await Attempt(result, BenchMetric.LatencyP50, async () =>
                {
                    pingPong = (await ClientAsync(ns, name, cancellationToken, "pingpong-client", host, Str(echo.Port), Str(Seconds)).ConfigureAwait(false))
                        .GetStep(PingPongClient.StepName);
                    NoteFailures(result, "ping-pong", pingPong);
                    result.Notes.Add($"ping-pong: {pingPong.RequestCount} round trips, mean {pingPong.Latency.MeanUs:0} µs, p99.9 {pingPong.Latency.P999Us:0} µs, max {pingPong.Latency.MaxUs:0} µs");
                    return pingPong.Latency.P50Us;
                }).ConfigureAwait(false);
                if (pingPong is not null)
                {
                    result.Values[BenchMetric.LatencyP99] = pingPong.Latency.P99Us;
                }
                else if (result.Errors.TryGetValue(BenchMetric.LatencyP50, out string? error))
                {
                    result.Errors[BenchMetric.LatencyP99] = error;
                }
            }

            await using (HostTcpServer hold = HostTcpServer.Hold())
            {
                await Attempt(result, BenchMetric.RssConnections, () => HoldAsync(ns, stack, hold, host, result, name, cancellationToken)).ConfigureAwait(false);
            }

            if (!stack.IsAlive)
            {
                result.Notes.Add($"the stack process exited during the run: {stack.LogTail()}");
            }
        }

        progress.WriteLine($"[{name}] done");
    }

    private List<string>? _notes;

    private int Seconds => (int)options.MeasureDuration.TotalSeconds;

    private static string Str(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static void NoteFailures(ImplementationResult result, string what, StepStats step)
    {
        if (step.FailCount > 0)
        {
            result.Notes.Add($"{what}: {step.FailCount} of {step.RequestCount} failed (first: {step.FirstFailure})");
        }
    }

    private async Task Attempt(ImplementationResult result, BenchMetric metric, Func<Task<double>> measure)
    {
        try
        {
            double value = await measure().ConfigureAwait(false);
            result.Values[metric] = value;
            progress.WriteLine($"[{result.Name}] {metric.Title}: {value.ToString(metric.Format, CultureInfo.InvariantCulture)} {metric.Unit}");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            string message = ex.Message.ReplaceLineEndings(" ");
            result.Errors[metric] = message.Length > 120 ? message[..120] + "…" : message;
            progress.WriteLine($"[{result.Name}] {metric.Title}: error: {message}");
        }
    }

    private async Task<double> IperfAsync(NetworkNamespace ns, string host, int port, bool reverse, string scope, CancellationToken cancellationToken)
    {
        var argv = new List<string> { "iperf3", "-c", host, "-p", Str(port), "-t", Str(Seconds), "-O", "1", "-J" };
        if (reverse)
        {
            argv.Add("-R");
        }

        IReadOnlyList<string> command = ns.Enter([.. argv]);
        log.Add(scope, command);
        ProcessResult run = await ProcessRunner.RunAsync(command, options.MeasureDuration + TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        using JsonDocument json = JsonDocument.Parse(run.StandardOutput.Length > 0 ? run.StandardOutput : "{}");
        if (json.RootElement.TryGetProperty("error", out JsonElement error))
        {
            throw new InvalidOperationException($"iperf3: {error.GetString()}");
        }

        if (run.ExitCode != 0 || !json.RootElement.TryGetProperty("end", out JsonElement end))
        {
            throw new InvalidOperationException($"iperf3 {run.Why}");
        }

        // The receiver's count is the delivered rate in either direction.
        double bitsPerSecond = end.GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
        if (end.TryGetProperty("sum_sent", out JsonElement sent) && sent.TryGetProperty("retransmits", out JsonElement retransmits))
        {
            _notes?.Add($"iperf3{(reverse ? " -R" : "")}: {retransmits.GetInt64()} retransmits by the sender");
        }

        return bitsPerSecond / 1e9;
    }

    private async Task<ScenarioStats> ClientAsync(NetworkNamespace ns, string scope, CancellationToken cancellationToken, params string[] args)
    {
        IReadOnlyList<string> command = ns.Enter([.. SelfCommand(), .. args]);
        log.Add(scope, command);
        ProcessResult run = await ProcessRunner.RunAsync(command, options.MeasureDuration + TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"{args[0]} {run.Why}");
        }

        return JsonSerializer.Deserialize(run.StandardOutput, ScenarioStatsJsonContext.Default.ScenarioStats)
            ?? throw new InvalidOperationException($"{args[0]} printed no statistics");
    }

    private async Task<double> HoldAsync(NetworkNamespace ns, RunningNetstack stack, HostTcpServer server, string host, ImplementationResult result, string scope, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> command = ns.Enter([.. SelfCommand(), "hold-client", host, Str(server.Port), Str(HeldConnections)]);
        log.Add(scope, command);
        using Process client = Process.Start(ProcessRunner.StartInfo(command)) ?? throw new InvalidOperationException("cannot start hold-client");
        ChildProcesses.Track(client);
        try
        {
            Task<string> stderr = client.StandardError.ReadToEndAsync(CancellationToken.None);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(90));
            string? line = await client.StandardOutput.ReadLineAsync(limit.Token).ConfigureAwait(false);
            if (line is null || !line.StartsWith("ready ", StringComparison.Ordinal))
            {
                await client.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                string why = (await stderr.ConfigureAwait(false)).Trim();
                throw new InvalidOperationException($"hold-client: {(why.Length > 0 ? why.Split('\n')[^1] : "no ready line")}");
            }

            string[] parts = line.Split(' ', 4);
            int open = int.Parse(parts[1], CultureInfo.InvariantCulture);
            for (int i = 0; i < 100 && server.Accepted < open; i++)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }

            // Let the stack settle (delayed ACKs, buffer trimming) before reading its memory.
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            double rss = RssMiB(stack.Pid);
            if (open < HeldConnections)
            {
                result.Notes.Add($"hold: only {open} of {HeldConnections} connections opened ({(parts.Length > 3 ? parts[3] : "no reason")})");
            }

            result.Notes.Add($"hold: {open} connections open from the namespace, {server.Accepted} accepted on the host");
            return rss;
        }
        finally
        {
            client.StandardInput.Close();
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await client.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                ProcessTree.Kill(client);
            }

            ChildProcesses.Forget(client);
        }
    }

    /// <summary>How to run this program again (inside a namespace): the apphost, or dotnet + dll.</summary>
    private static string[] SelfCommand()
    {
        string path = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find own executable");
        return Path.GetFileNameWithoutExtension(path) == "dotnet"
            ? [path, Path.Combine(AppContext.BaseDirectory, "beemesh-loadtests.dll")]
            : [path];
    }

    private static double RssMiB(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                string kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) / 1024.0;
            }
        }

        throw new InvalidOperationException($"no VmRSS for pid {pid}");
    }
}
