namespace Beemesh.Agent.Client;

/// <summary>Body of every refused admin request.</summary>
public sealed class ErrorResponse
{
    /// <summary>What was wrong, in one line.</summary>
    public string Error { get; set; } = string.Empty;

    /// <summary>Itemized reasons (e.g. each policy error with its line), when there are several.</summary>
    public List<string>? Details { get; set; }
}
