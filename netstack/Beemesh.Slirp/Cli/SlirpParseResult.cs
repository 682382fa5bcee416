namespace Beemesh.Slirp.Cli;

/// <summary>
/// Outcome of parsing a slirp4netns command line. The texts are exactly what slirp4netns 1.2
/// would have written so far (warnings, usage, error lines); the caller writes
/// <see cref="StandardOutput"/> to stdout and <see cref="StandardError"/> to stderr, and exits with
/// <see cref="ExitCode"/> unless <see cref="Outcome"/> is <see cref="SlirpParseOutcome.Run"/>.
/// </summary>
/// <param name="Outcome">What to do next.</param>
/// <param name="Options">The settings; non-null only when <paramref name="Outcome"/> is Run.</param>
/// <param name="StandardOutput">Text for stdout (warnings printed while parsing, usage, help or version). May be empty.</param>
/// <param name="StandardError">Text for stderr (the error line, if any). May be empty and may lack a final newline, as in slirp4netns.</param>
/// <param name="ExitCode">0 for Run, Help and Version; 1 for Error.</param>
public sealed record SlirpParseResult(
    SlirpParseOutcome Outcome,
    SlirpOptions? Options,
    string StandardOutput,
    string StandardError,
    int ExitCode);
