namespace Beemesh.Agent.Client;

/// <summary>One stored <c>AuthorizationPolicy</c>, with the YAML document it was applied from.</summary>
public sealed class PolicyDocument
{
    /// <summary>The policy's namespace.</summary>
    public string Namespace { get; set; } = string.Empty;

    /// <summary>The policy's name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>ALLOW, DENY or AUDIT.</summary>
    public string Action { get; set; } = string.Empty;

    /// <summary>The policy's YAML document as applied; <c>PolicyLoader.Load</c> accepts it alone.</summary>
    public string Yaml { get; set; } = string.Empty;
}
