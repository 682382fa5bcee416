namespace Beemesh.Authorization;

/// <summary>Why an <see cref="AuthorizationDecision"/> came out the way it did.</summary>
public enum AuthorizationOutcome
{
    /// <summary>A rule of a DENY policy matched; DENY policies are checked before ALLOW policies.</summary>
    DeniedByPolicy,

    /// <summary>A rule of an ALLOW policy matched and no DENY policy did.</summary>
    AllowedByPolicy,

    /// <summary>No DENY matched and no ALLOW policy applies to the workload: allowed by default.</summary>
    AllowedNoAllowPolicy,

    /// <summary>ALLOW policies apply to the workload but none matched: denied by default.</summary>
    DeniedNoAllowMatch,
}
