namespace Beemesh.Agent.Client;

/// <summary>Answer to an accepted <c>POST /v1/policies</c>.</summary>
public sealed class PolicyApplyResult
{
    /// <summary>The policy version after the apply.</summary>
    public long Version { get; set; }

    /// <summary>The applied policies as <c>namespace/name</c>, in file order.</summary>
    public List<string> Applied { get; set; } = [];
}
