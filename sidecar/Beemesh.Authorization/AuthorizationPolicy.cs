namespace Beemesh.Authorization;

/// <summary>
/// One Istio <c>AuthorizationPolicy</c> (security.istio.io/v1 or v1beta1), as loaded by
/// <see cref="PolicyLoader"/>. Immutable once built, so one instance can be shared by every
/// connection and evaluated concurrently.
/// </summary>
public sealed class AuthorizationPolicy
{
    /// <summary><c>metadata.name</c>.</summary>
    public required string Name { get; init; }

    /// <summary><c>metadata.namespace</c>; <c>default</c> when omitted, as kubectl does.</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>
    /// <c>spec.selector.matchLabels</c>: the policy applies only to workloads carrying all these labels.
    /// Empty: every workload in <see cref="Namespace"/> (or in the mesh for the root namespace).
    /// </summary>
    public IReadOnlyDictionary<string, string> Selector { get; init; } = new Dictionary<string, string>();

    /// <summary><c>spec.action</c>; ALLOW when omitted.</summary>
    public PolicyAction Action { get; init; } = PolicyAction.Allow;

    /// <summary>
    /// <c>spec.rules</c>. Empty (omitted or <c>[]</c>) means the policy matches nothing: an ALLOW
    /// policy without rules therefore denies everything it applies to, a DENY policy without rules
    /// never denies.
    /// </summary>
    public IReadOnlyList<PolicyRule> Rules { get; init; } = [];

    /// <summary>Line of the document's start in the loaded text (1-based), 0 when built in code.</summary>
    public int SourceLine { get; init; }

    /// <summary><c>namespace/name</c>, for logs and decisions.</summary>
    public override string ToString() => $"{Namespace}/{Name}";
}
