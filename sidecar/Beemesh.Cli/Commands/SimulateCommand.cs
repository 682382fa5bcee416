using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Beemesh.Overlay.Simulation;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh simulate --nodes N [--latency MIN-MAX] [--loss P] [--loss-model tcp|drop] [--crash F] [--partition F] [--seed S] [--publishers K] [--details]</c>:
/// runs the overlay's membership and broadcast code on a discrete-event network and prints how fast
/// records reach the live nodes. Same seed, same output. The links are TCP connections by default
/// (a lost segment is retransmitted after the retransmission timeout, order is kept per link);
/// <c>--loss-model drop</c> loses messages outright, as datagrams.
/// </summary>
public static class SimulateCommand
{
    /// <summary>Most nodes a run may ask for.</summary>
    public const int MaxNodes = 1_000_000;

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var nodes = new Option<string>("--nodes") { Description = "Number of nodes (2-1,000,000)", Required = true };
        var latency = new Option<string>("--latency") { Description = "One-way link latency range MIN-MAX in milliseconds", DefaultValueFactory = _ => "10-50" };
        var loss = new Option<string>("--loss") { Description = "Probability a transmission is lost, 0-0.99 or a percentage (10%)", DefaultValueFactory = _ => "0" };
        var lossModel = new Option<string>("--loss-model")
        {
            Description = "tcp: links are TCP connections, a lost segment is sent again after the retransmission timeout (round trip + 200 ms, doubling) and later messages on the link wait for it; drop: a lost message is gone and messages on a link may overtake each other, as datagrams",
            DefaultValueFactory = _ => "tcp",
        };
        var details = new Option<bool>("--details") { Description = "Also print payload messages sent per node (to crashed nodes and lost ones included) and where the received copies came from (first copies and duplicates by cause)" };
        var crash = new Option<string>("--crash") { Description = "Fraction of nodes that crash just before publishing, 0-0.99 or a percentage", DefaultValueFactory = _ => "0" };
        var partition = new Option<string>("--partition") { Description = "Fraction of nodes cut off while publishing (healed after 3 s), 0-0.99 or a percentage", DefaultValueFactory = _ => "0" };
        var seed = new Option<string>("--seed") { Description = "Seed of every random choice", DefaultValueFactory = _ => "1" };
        var publishers = new Option<string>("--publishers") { Description = "Nodes that publish the 5 measured records in turn (0: a new random node for each record)", DefaultValueFactory = _ => "0" };
        var quiet = new Option<bool>("--quiet") { Description = "No progress bar on stderr" };
        var command = new Command("simulate", "Simulate the overlay (HyParView + Plumtree) on a discrete-event network and print dissemination times")
        {
            nodes, latency, loss, lossModel, crash, partition, seed, publishers, quiet, details,
        };
        command.SetAction(parse =>
        {
            TextWriter output = parse.InvocationConfiguration.Output;
            TextWriter error = parse.InvocationConfiguration.Error;
            if (!TryParse(parse.GetValue(nodes)!, parse.GetValue(latency)!, parse.GetValue(loss)!, parse.GetValue(crash)!,
                    parse.GetValue(partition)!, parse.GetValue(seed)!, out SimulationOptions? options, out string? problem, parse.GetValue(lossModel)!, parse.GetValue(publishers)!))
            {
                error.WriteLine($"beemesh simulate: {problem}");
                return 2;
            }

            SimulationReport report = Run(options!, parse.GetValue(quiet) ? null : error);
            output.Write(report.Format());
            if (parse.GetValue(details))
            {
                output.Write(string.Create(CultureInfo.InvariantCulture, $"payload sends per node: {report.PayloadSendsPerNode:0.00}\n"));
                output.Write(report.Breakdown?.Format());
            }

            return 0;
        });
        return command;
    }

    /// <summary>Parses the command's arguments; on failure <paramref name="problem"/> is one line saying what is wrong.</summary>
    public static bool TryParse(string nodes, string latency, string loss, string crash, string partition, string seed, out SimulationOptions? options, out string? problem, string lossModel = "tcp", string publishers = "0")
    {
        options = null;
        problem = null;
        if (!int.TryParse(nodes, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 2 || n > MaxNodes)
        {
            problem = $"invalid --nodes '{nodes}': expected a whole number from 2 to {MaxNodes:N0}";
            return false;
        }

        string[] range = latency.Split('-');
        if (range.Length != 2
            || !int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int min)
            || !int.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out int max)
            || min < 1 || max < min || max > 10_000)
        {
            problem = $"invalid --latency '{latency}': expected MIN-MAX in milliseconds with 1 <= MIN <= MAX <= 10000, e.g. 10-50";
            return false;
        }

        if (!TryFraction(loss, "--loss", out double lossValue, out problem)
            || !TryFraction(crash, "--crash", out double crashValue, out problem)
            || !TryFraction(partition, "--partition", out double partitionValue, out problem))
        {
            return false;
        }

        if (crashValue + partitionValue > 0.99)
        {
            problem = "invalid --crash and --partition: together they must leave some nodes live and connected (sum at most 0.99)";
            return false;
        }

        LossModel model;
        switch (lossModel)
        {
            case "tcp":
                model = LossModel.Tcp;
                break;
            case "drop":
                model = LossModel.Drop;
                break;
            default:
                problem = $"invalid --loss-model '{lossModel}': expected tcp or drop";
                return false;
        }

        if (!int.TryParse(seed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int s))
        {
            problem = $"invalid --seed '{seed}': expected a 32-bit integer";
            return false;
        }

        if (!int.TryParse(publishers, NumberStyles.None, CultureInfo.InvariantCulture, out int publisherCount) || publisherCount > n)
        {
            problem = $"invalid --publishers '{publishers}': expected a whole number from 0 to the number of nodes";
            return false;
        }

        options = new SimulationOptions
        {
            Publishers = publisherCount,
            Nodes = n,
            LatencyMinMs = min,
            LatencyMaxMs = max,
            Loss = lossValue,
            LossModel = model,
            Crash = crashValue,
            Partition = partitionValue,
            Seed = s,
        };
        return true;
    }

    private static bool TryFraction(string text, string name, out double value, out string? problem)
    {
        problem = null;
        bool percent = text.EndsWith('%');
        string number = percent ? text[..^1] : text;
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value))
        {
            value = -1;
        }
        else if (percent)
        {
            value /= 100;
        }

        if (value is < 0 or > 0.99)
        {
            problem = $"invalid {name} '{text}': expected a fraction from 0 to 0.99 or a percentage such as 10%";
            return false;
        }

        return true;
    }

    /// <summary>Runs one simulation, drawing a progress bar on <paramref name="progress"/> when given.</summary>
    public static SimulationReport Run(SimulationOptions options, TextWriter? progress)
    {
        var simulator = new OverlaySimulator(options);
        if (progress is not null)
        {
            // Expected simulated length: the joins, settling, warm-up and one second per record plus a few to finish.
            double expected = ((options.Nodes - 1) * options.JoinSpacing / 1e6) + options.SettleSeconds + 2 + options.Records + 3;
            var clock = Stopwatch.StartNew();
            long lastDraw = -1;
            simulator.Progress = now =>
            {
                long elapsed = clock.ElapsedMilliseconds;
                if (elapsed - lastDraw < 200)
                {
                    return;
                }

                lastDraw = elapsed;
                double done = Math.Clamp(now / 1e6 / expected, 0, 1);
                int filled = (int)(done * 30);
                progress.Write(string.Create(CultureInfo.InvariantCulture,
                    $"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {done * 100,3:0}%  simulated {now / 1e6:0.0} s, {simulator.Events:N0} events, {elapsed / 1000.0:0} s"));
            };
        }

        SimulationReport report = simulator.Run();
        if (progress is not null)
        {
            progress.Write(string.Create(CultureInfo.InvariantCulture, $"\r[{new string('#', 30)}] 100%  simulated {report.SimulatedSeconds:0.0} s, {report.Events:N0} events{new string(' ', 12)}\n"));
        }

        return report;
    }
}
