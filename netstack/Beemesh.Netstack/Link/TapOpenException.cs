namespace Beemesh.Netstack.Link;

/// <summary>
/// Opening a tap through <c>beemesh-nsenter</c> failed. <see cref="Exception.Message"/> carries the
/// helper's own one-line reason when it gave one.
/// </summary>
public sealed class TapOpenException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Full message shown to the user.</param>
    /// <param name="helperMessage">The reason the helper sent or printed, if any.</param>
    /// <param name="exitCode">The helper's exit status, if it exited.</param>
    /// <param name="inner">The underlying failure, if any.</param>
    public TapOpenException(string message, string? helperMessage = null, int? exitCode = null, Exception? inner = null)
        : base(message, inner)
    {
        HelperMessage = helperMessage;
        ExitCode = exitCode;
    }

    /// <summary>The helper's reason ("no process with pid 42"), or null when it gave none.</summary>
    public string? HelperMessage { get; }

    /// <summary>The helper's exit status, or null when it had not exited (timeout, still running).</summary>
    public int? ExitCode { get; }
}
