namespace Beemesh.Authorization;

/// <summary>
/// What an <see cref="AuthorizationPolicy"/> does when one of its rules matches
/// (Istio <c>spec.action</c>). Istio's <c>CUSTOM</c> action is not supported and is refused by the loader.
/// </summary>
public enum PolicyAction
{
    /// <summary>Allow the request when a rule matches. Once any ALLOW policy applies to a workload,
    /// requests that match none of them are denied. The default when <c>action</c> is omitted.</summary>
    Allow,

    /// <summary>Deny the request when a rule matches. Evaluated before every ALLOW policy.</summary>
    Deny,

    /// <summary>Mark the request for audit when a rule matches; never changes the decision.</summary>
    Audit,
}
