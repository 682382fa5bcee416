using System.Globalization;

namespace Beemesh.Linearizability;

/// <summary>
/// The command line: <c>FILE [--max-steps N]</c> checks the history in FILE and prints the verdict
/// (and, for keys that fail, why). Exit codes: 0 linearizable, 1 not linearizable, 2 bad usage or
/// a bad file (one line naming the problem), 3 unknown (search limit).
/// </summary>
public static class CheckCommand
{
    private const string Usage = "usage: Beemesh.Linearizability FILE [--max-steps N]";

    /// <summary>Runs the command; returns its exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        long maxSteps = new CheckerOptions().MaxSearchSteps;
        string? file = null;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--max-steps" && i + 1 < args.Count)
            {
                if (!long.TryParse(args[++i], NumberStyles.None, CultureInfo.InvariantCulture, out maxSteps) || maxSteps < 1)
                {
                    error.WriteLine($"--max-steps: \"{args[i]}\" is not a positive integer");
                    return 2;
                }
            }
            else if (file is null && !args[i].StartsWith("--", StringComparison.Ordinal))
            {
                file = args[i];
            }
            else
            {
                error.WriteLine(Usage);
                return 2;
            }
        }

        if (file is null)
        {
            error.WriteLine(Usage);
            return 2;
        }

        List<KvOperation> history;
        try
        {
            history = HistoryFile.ReadFile(file);
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"{file}: {e.Message}");
            return 2;
        }

        CheckResult result = LinearizabilityChecker.Check(history, new CheckerOptions { MaxSearchSteps = maxSteps });
        output.WriteLine(result.Describe());
        return result.Outcome switch
        {
            CheckOutcome.Linearizable => 0,
            CheckOutcome.NotLinearizable => 1,
            _ => 3,
        };
    }
}
