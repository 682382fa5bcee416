using System.Globalization;

namespace Beemesh.LoadTests.Bench;

/// <summary>Command line of <c>beemesh-loadtests bench</c>.</summary>
internal sealed class BenchOptions
{
    public const string Usage =
        "usage: beemesh-loadtests bench [--out FILE] [--quick] [--impl slirp4netns,pasta,beemesh] [--beemesh-slirp PATH] [--mtu N] [--seconds N]";

    /// <summary>
    /// Report path (default loadtests/reports/netstack-mtuN.md). The index netstack.md beside a per-MTU
    /// report is generated from those reports, so it is never a run's output.
    /// </summary>
    public string OutPath { get; private set; } = "";

    /// <summary>Short measurements (3 s instead of 10 s): indicative only.</summary>
    public bool Quick { get; private set; }

    /// <summary>Implementations in report order (default slirp4netns, pasta, beemesh).</summary>
    public IReadOnlyList<string> Implementations { get; private set; } = ["slirp4netns", "pasta", "beemesh"];

    /// <summary>Path of beemesh-slirp (default out/bin/beemesh-slirp, built by ./scripts/build).</summary>
    public string BeemeshSlirpPath { get; private set; } = "out/bin/beemesh-slirp";

    /// <summary>MTU given to every implementation (default 65520, podman's default for slirp4netns).</summary>
    public int Mtu { get; private set; } = 65520;

    /// <summary>Seconds per timed measurement; 0 means 10, or 3 with --quick.</summary>
    public int Seconds { get; private set; }

    public TimeSpan MeasureDuration => TimeSpan.FromSeconds(Seconds > 0 ? Seconds : Quick ? 3 : 10);

    /// <summary>Parses the arguments after "bench"; returns null and writes why on a bad command line.</summary>
    public static BenchOptions? Parse(IReadOnlyList<string> args, TextWriter error)
    {
        var options = new BenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? Next()
            {
                if (i + 1 >= args.Count)
                {
                    error.WriteLine($"beemesh-loadtests bench: {arg} needs a value");
                    return null;
                }

                return args[++i];
            }

            switch (arg)
            {
                case "--quick":
                    options.Quick = true;
                    break;
                case "--out":
                    options.OutPath = Next() ?? "";
                    break;
                case "--beemesh-slirp":
                    options.BeemeshSlirpPath = Next() ?? "";
                    break;
                case "--impl":
                    string[] names = (Next() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    foreach (string name in names)
                    {
                        if (name is not ("slirp4netns" or "pasta" or "beemesh"))
                        {
                            error.WriteLine($"beemesh-loadtests bench: unknown implementation '{name}' (slirp4netns, pasta, beemesh)");
                            return null;
                        }
                    }

                    options.Implementations = names.Distinct(StringComparer.Ordinal).ToArray();
                    break;
                case "--mtu":
                case "--seconds":
                    string? text = Next();
                    if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value <= 0)
                    {
                        error.WriteLine($"beemesh-loadtests bench: {arg} needs a positive integer");
                        return null;
                    }

                    if (arg == "--mtu")
                    {
                        options.Mtu = value;
                    }
                    else
                    {
                        options.Seconds = value;
                    }

                    break;
                case "-h":
                case "--help":
                    error.WriteLine(Usage);
                    return null;
                default:
                    error.WriteLine($"beemesh-loadtests bench: unknown argument '{arg}'");
                    error.WriteLine(Usage);
                    return null;
            }
        }

        if (options.OutPath.Length == 0)
        {
            options.OutPath = Path.Combine("loadtests", "reports", NetstackIndex.ReportFileName(options.Mtu));
        }

        if (Path.GetFileName(options.OutPath) == NetstackIndex.FileName)
        {
            error.WriteLine($"beemesh-loadtests bench: {NetstackIndex.FileName} is the index generated from the per-MTU reports; write the run to netstack-mtuN.md");
            return null;
        }

        if (options.BeemeshSlirpPath.Length == 0 || options.Implementations.Count == 0)
        {
            error.WriteLine(Usage);
            return null;
        }

        return options;
    }
}
