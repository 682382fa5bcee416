namespace Beemesh.Authorization;

/// <summary>
/// The result of <see cref="PolicyEvaluator.Evaluate(IEnumerable{AuthorizationPolicy}, AuthorizationRequest)"/>.
/// A struct whose <see cref="Reason"/> is built only when read, so deciding allocates nothing.
/// </summary>
public readonly record struct AuthorizationDecision
{
    /// <summary>Creates a decision; normally only the evaluator does this.</summary>
    /// <param name="outcome">Why the decision was taken.</param>
    /// <param name="policy">The deciding policy, if a rule decided.</param>
    /// <param name="ruleIndex">The deciding rule's index in <paramref name="policy"/>, or -1.</param>
    /// <param name="auditPolicy">The first AUDIT policy that matched, if any.</param>
    /// <param name="auditRuleIndex">Its matching rule index, or -1.</param>
    public AuthorizationDecision(AuthorizationOutcome outcome, AuthorizationPolicy? policy, int ruleIndex, AuthorizationPolicy? auditPolicy, int auditRuleIndex)
    {
        Outcome = outcome;
        Policy = policy;
        RuleIndex = ruleIndex;
        AuditPolicy = auditPolicy;
        AuditRuleIndex = auditRuleIndex;
    }

    /// <summary>Whether the connection or request may proceed.</summary>
    public bool Allowed => Outcome is AuthorizationOutcome.AllowedByPolicy or AuthorizationOutcome.AllowedNoAllowPolicy;

    /// <summary>Why the decision was taken.</summary>
    public AuthorizationOutcome Outcome { get; }

    /// <summary>The DENY or ALLOW policy whose rule decided; null for the two default outcomes.</summary>
    public AuthorizationPolicy? Policy { get; }

    /// <summary>Index of the deciding rule within <see cref="Policy"/>; -1 when no rule decided.</summary>
    public int RuleIndex { get; }

    /// <summary>Name of the deciding policy, or null.</summary>
    public string? PolicyName => Policy?.Name;

    /// <summary>Namespace of the deciding policy, or null.</summary>
    public string? PolicyNamespace => Policy?.Namespace;

    /// <summary>Whether an AUDIT policy matched; the request must then be recorded whatever the decision.</summary>
    public bool Audit => AuditPolicy is not null;

    /// <summary>The first AUDIT policy that matched, or null.</summary>
    public AuthorizationPolicy? AuditPolicy { get; }

    /// <summary>Index of the matching rule within <see cref="AuditPolicy"/>; -1 when none.</summary>
    public int AuditRuleIndex { get; }

    /// <summary>One line for logs and audit records, e.g. <c>denied by DENY policy foo/no-get rule 0</c>.</summary>
    public string Reason
    {
        get
        {
            string text = Outcome switch
            {
                AuthorizationOutcome.DeniedByPolicy => $"denied by DENY policy {Policy} rule {RuleIndex}",
                AuthorizationOutcome.AllowedByPolicy => $"allowed by ALLOW policy {Policy} rule {RuleIndex}",
                AuthorizationOutcome.AllowedNoAllowPolicy => "allowed: no ALLOW policy applies to the workload",
                _ => "default deny: ALLOW policies apply to the workload but none matched",
            };
            return AuditPolicy is null ? text : $"{text}; audited by {AuditPolicy} rule {AuditRuleIndex}";
        }
    }

    /// <summary>Same as <see cref="Reason"/>.</summary>
    public override string ToString() => Reason;
}
