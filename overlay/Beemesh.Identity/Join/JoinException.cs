namespace Beemesh.Identity.Join;

/// <summary>A join that did not succeed; <see cref="Exception.Message"/> is one line for the user.</summary>
public sealed class JoinException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JoinException(JoinRefusal refusal, string message, Exception? inner = null)
        : base(message, inner)
    {
        Refusal = refusal;
    }

    /// <summary>Why the join did not succeed.</summary>
    public JoinRefusal Refusal { get; }
}
