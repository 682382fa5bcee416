namespace Beemesh.Agent.Client;

/// <summary>Every stored policy at one version (the answer of list and watch).</summary>
public sealed class PolicySet
{
    /// <summary>
    /// Random per agent start (absent from older agents). A watcher that sees it change knows the
    /// agent restarted and takes the set whatever its version.
    /// </summary>
    public string? Epoch { get; set; }

    /// <summary>Bumped by every apply and delete; starts at 0 with no policies and continues across agent restarts (the policies are stored).</summary>
    public long Version { get; set; }

    /// <summary>The policies, ordered by namespace then name.</summary>
    public List<PolicyDocument> Policies { get; set; } = [];

    /// <summary>All documents joined into one multi-document YAML text, for <c>PolicyLoader.Load</c>.</summary>
    public string ToYaml() => string.Join("---\n", Policies.Select(p => p.Yaml.EndsWith('\n') ? p.Yaml : p.Yaml + "\n"));
}
