namespace Beemesh.LoadTests.Bench;

/// <summary>Exit code and captured output of a finished command.</summary>
internal sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>The last non-empty line of stderr (or stdout), to say why a command failed.</summary>
    public string Why
    {
        get
        {
            string text = StandardError.Trim().Length > 0 ? StandardError : StandardOutput;
            string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return lines.Length == 0 ? $"exit code {ExitCode}" : $"exit code {ExitCode}: {lines[^1]}";
        }
    }
}
