namespace Beemesh.Slirp.Cli;

/// <summary>What the command line asks the process to do.</summary>
public enum SlirpParseOutcome
{
    /// <summary>Valid options: start the stack with <see cref="SlirpParseResult.Options"/>.</summary>
    Run,

    /// <summary><c>-h</c>/<c>--help</c>: print the usage text and exit 0.</summary>
    Help,

    /// <summary><c>-v</c>/<c>--version</c>: print the version lines and exit 0.</summary>
    Version,

    /// <summary>The command line is invalid: print the texts and exit with <see cref="SlirpParseResult.ExitCode"/>.</summary>
    Error,
}
