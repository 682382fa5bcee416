using System.Text;

namespace Beemesh.LoadTests.Bench;

/// <summary>Every external command the harness ran, in order, shell-quoted, for the report.</summary>
internal sealed class CommandLog
{
    private readonly Lock _gate = new();
    private readonly List<(string Scope, string Command)> _entries = [];

    public void Add(string scope, IEnumerable<string> argv)
    {
        string line = Quote(argv);
        lock (_gate)
        {
            _entries.Add((scope, line));
        }
    }

    /// <summary>Adds a line already written as shell (for commands that use a variable).</summary>
    public void AddLine(string scope, string line)
    {
        lock (_gate)
        {
            _entries.Add((scope, line));
        }
    }

    public IReadOnlyList<(string Scope, string Command)> Entries
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>
    /// Ends a benchmark report: the run's notes (when there are any), then every command in a shell
    /// block, each under a comment naming its scope, after <paramref name="commandsIntro"/>.
    /// </summary>
    public void AppendReportTail(StringBuilder sb, IReadOnlyList<string> notes, string commandsIntro)
    {
        if (notes.Count > 0)
        {
            sb.AppendLine("## Notes from this run");
            sb.AppendLine();
            foreach (string note in notes)
            {
                sb.AppendLine("- " + note);
            }

            sb.AppendLine();
        }

        sb.AppendLine("## Commands");
        sb.AppendLine();
        sb.AppendLine(commandsIntro);
        sb.AppendLine();
        sb.AppendLine("```sh");
        foreach ((string scope, string command) in Entries)
        {
            sb.AppendLine("# " + scope);
            sb.AppendLine(command);
        }

        sb.AppendLine("```");
    }

    public static string Quote(IEnumerable<string> argv)
    {
        var sb = new StringBuilder();
        foreach (string arg in argv)
        {
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }

            sb.Append(QuoteOne(arg));
        }

        return sb.ToString();
    }

    public static string QuoteOne(string arg)
    {
        if (arg.Length > 0 && arg.All(static c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c)))
        {
            return arg;
        }

        return "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }
}
