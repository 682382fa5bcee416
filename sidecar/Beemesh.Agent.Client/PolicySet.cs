namespace Beemesh.Agent.Client;

/// <summary>Every stored policy at one version (the answer of list and watch).</summary>
public sealed class PolicySet
{
    /// <summary>Bumped by every apply and delete; starts at 0 with no policies.</summary>
    public long Version { get; set; }

    /// <summary>The policies, ordered by namespace then name.</summary>
    public List<PolicyDocument> Policies { get; set; } = [];

    /// <summary>All documents joined into one multi-document YAML text, for <c>PolicyLoader.Load</c>.</summary>
    public string ToYaml() => string.Join("---\n", Policies.Select(p => p.Yaml.EndsWith('\n') ? p.Yaml : p.Yaml + "\n"));
}
