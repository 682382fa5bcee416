namespace Beemesh.Authorization;

/// <summary>
/// Decides one connection or request against a set of policies with Istio's semantics. Pure and
/// sans-IO: same inputs, same decision; safe to call concurrently; allocates nothing when the policy
/// set is an <see cref="IReadOnlyList{T}"/>.
/// </summary>
/// <remarks>
/// Order (Istio, CUSTOM not supported):
/// <list type="number">
/// <item>Only policies that apply to the workload count: those in the workload's namespace or in the
/// root namespace whose selector labels all appear on the workload.</item>
/// <item>If any DENY policy matches, the request is denied.</item>
/// <item>Otherwise, if no ALLOW policy applies, it is allowed; if one applies, it is allowed only when
/// at least one ALLOW policy matches.</item>
/// <item>AUDIT policies never change the decision; a match only sets <see cref="AuthorizationDecision.Audit"/>.</item>
/// </list>
/// HTTP-only fields (methods, paths, hosts, their not-forms, request.headers conditions) on a plain TCP
/// request: an ALLOW (or AUDIT) rule that uses any of them anywhere does not match; a DENY rule ignores them and matches
/// on its other fields. Both directions fail closed, as Istio documents for TCP workloads.
/// </remarks>
public sealed class PolicyEvaluator
{
    /// <summary>Istio's default root namespace, whose policies apply mesh-wide.</summary>
    public const string DefaultRootNamespace = "istio-system";

    /// <summary>An evaluator using <see cref="DefaultRootNamespace"/>.</summary>
    public static PolicyEvaluator Default { get; } = new();

    /// <summary>Creates an evaluator.</summary>
    /// <param name="rootNamespace">Namespace whose policies apply to every workload in the mesh.</param>
    public PolicyEvaluator(string rootNamespace = DefaultRootNamespace)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootNamespace);
        RootNamespace = rootNamespace;
    }

    /// <summary>Namespace whose policies apply to every workload in the mesh.</summary>
    public string RootNamespace { get; }

    /// <summary>Decides <paramref name="request"/> against <paramref name="policies"/>.</summary>
    /// <param name="policies">Every policy known to the sidecar; those that do not apply are skipped.</param>
    /// <param name="request">The connection or request to decide.</param>
    public AuthorizationDecision Evaluate(IEnumerable<AuthorizationPolicy> policies, AuthorizationRequest request)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(request);
        var state = new EvaluationState();
        if (policies is IReadOnlyList<AuthorizationPolicy> list)
        {
            for (int i = 0; i < list.Count; i++)
            {
                Visit(list[i], request, ref state);
            }
        }
        else
        {
            foreach (AuthorizationPolicy policy in policies)
            {
                Visit(policy, request, ref state);
            }
        }

        if (state.DenyPolicy is not null)
        {
            return new AuthorizationDecision(AuthorizationOutcome.DeniedByPolicy, state.DenyPolicy, state.DenyRule, state.AuditPolicy, state.AuditRule);
        }

        if (state.AllowPolicy is not null)
        {
            return new AuthorizationDecision(AuthorizationOutcome.AllowedByPolicy, state.AllowPolicy, state.AllowRule, state.AuditPolicy, state.AuditRule);
        }

        AuthorizationOutcome outcome = state.AnyAllowApplies ? AuthorizationOutcome.DeniedNoAllowMatch : AuthorizationOutcome.AllowedNoAllowPolicy;
        return new AuthorizationDecision(outcome, null, -1, state.AuditPolicy, state.AuditRule);
    }

    /// <summary>Whether <paramref name="policy"/> applies to the workload named in <paramref name="request"/>.</summary>
    public bool AppliesTo(AuthorizationPolicy policy, AuthorizationRequest request)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(request);
        if (!string.Equals(policy.Namespace, request.WorkloadNamespace, StringComparison.Ordinal)
            && !string.Equals(policy.Namespace, RootNamespace, StringComparison.Ordinal))
        {
            return false;
        }

        IReadOnlyDictionary<string, string> selector = policy.Selector;
        if (selector.Count == 0)
        {
            return true;
        }

        // The loader builds a Dictionary: walk it with its struct enumerator, not the boxed interface one.
        if (selector is Dictionary<string, string> dictionary)
        {
            foreach (KeyValuePair<string, string> label in dictionary)
            {
                if (!HasLabel(request, label))
                {
                    return false;
                }
            }

            return true;
        }

        foreach (KeyValuePair<string, string> label in selector)
        {
            if (!HasLabel(request, label))
            {
                return false;
            }
        }

        return true;
    }

    private static bool HasLabel(AuthorizationRequest request, KeyValuePair<string, string> label) =>
        request.WorkloadLabels.TryGetValue(label.Key, out string? value)
        && string.Equals(value, label.Value, StringComparison.Ordinal);

    private void Visit(AuthorizationPolicy policy, AuthorizationRequest request, ref EvaluationState state)
    {
        // Once a DENY matched and an AUDIT matched, nothing else can change the decision.
        if (state.DenyPolicy is not null && state.AuditPolicy is not null)
        {
            return;
        }

        if (!AppliesTo(policy, request))
        {
            return;
        }

        switch (policy.Action)
        {
            case PolicyAction.Deny:
                if (state.DenyPolicy is null && TryMatch(policy, request, failClosedForHttpFields: true, out int denyRule))
                {
                    state.DenyPolicy = policy;
                    state.DenyRule = denyRule;
                }

                break;
            case PolicyAction.Allow:
                state.AnyAllowApplies = true;
                if (state.AllowPolicy is null && state.DenyPolicy is null && TryMatch(policy, request, failClosedForHttpFields: false, out int allowRule))
                {
                    state.AllowPolicy = policy;
                    state.AllowRule = allowRule;
                }

                break;
            case PolicyAction.Audit:
                // Audit marks what an ALLOW rule would match, so HTTP-only fields on TCP do not match.
                if (state.AuditPolicy is null && TryMatch(policy, request, failClosedForHttpFields: false, out int auditRule))
                {
                    state.AuditPolicy = policy;
                    state.AuditRule = auditRule;
                }

                break;
        }
    }

    /// <summary>
    /// Finds the first matching rule. <paramref name="failClosedForHttpFields"/> selects how HTTP-only
    /// fields behave on plain TCP: true (DENY) ignores them, false (ALLOW) makes the rule not match.
    /// </summary>
    private static bool TryMatch(AuthorizationPolicy policy, AuthorizationRequest request, bool failClosedForHttpFields, out int ruleIndex)
    {
        IReadOnlyList<PolicyRule> rules = policy.Rules;
        for (int i = 0; i < rules.Count; i++)
        {
            if (RuleMatches(rules[i], request, failClosedForHttpFields))
            {
                ruleIndex = i;
                return true;
            }
        }

        ruleIndex = -1;
        return false;
    }

    private static bool RuleMatches(PolicyRule rule, AuthorizationRequest request, bool ignoreHttpFieldsOnTcp)
    {
        bool tcp = request.Http is null;
        if (tcp && !ignoreHttpFieldsOnTcp && rule.HasHttpFields)
        {
            // ALLOW: Istio treats a rule it cannot evaluate on TCP as invalid and ignores the whole
            // rule (not only the operation that names an HTTP field), so the rule never matches.
            return false;
        }

        IReadOnlyList<PolicySource> from = rule.From;
        if (from.Count != 0)
        {
            bool any = false;
            for (int i = 0; i < from.Count && !any; i++)
            {
                any = SourceMatches(from[i], request);
            }

            if (!any)
            {
                return false;
            }
        }

        IReadOnlyList<PolicyOperation> to = rule.To;
        if (to.Count != 0)
        {
            bool any = false;
            for (int i = 0; i < to.Count && !any; i++)
            {
                // DENY on TCP reaches here with HTTP fields present: they are skipped, the rest decides.
                any = OperationMatches(to[i], request, checkHttpFields: !tcp);
            }

            if (!any)
            {
                return false;
            }
        }

        IReadOnlyList<PolicyCondition> when = rule.When;
        for (int i = 0; i < when.Count; i++)
        {
            PolicyCondition condition = when[i];
            if (tcp && condition.IsHttpOnly)
            {
                continue;
            }

            if (!condition.Matches(request))
            {
                return false;
            }
        }

        return true;
    }

    private static bool SourceMatches(PolicySource source, AuthorizationRequest request) =>
        AnyOrUnset(source.Principals, request.SourcePrincipal)
        && NoneOf(source.NotPrincipals, request.SourcePrincipal)
        && AnyOrUnset(source.Namespaces, request.SourceNamespace)
        && NoneOf(source.NotNamespaces, request.SourceNamespace)
        && AnyIpOrUnset(source.IpBlocks, request)
        && NoIpOf(source.NotIpBlocks, request);

    private static bool OperationMatches(PolicyOperation operation, AuthorizationRequest request, bool checkHttpFields)
    {
        if (operation.Ports.Count != 0 && !ContainsPort(operation.Ports, request.DestinationPort))
        {
            return false;
        }

        if (ContainsPort(operation.NotPorts, request.DestinationPort))
        {
            return false;
        }

        if (!checkHttpFields)
        {
            return true;
        }

        HttpRequestAttributes http = request.Http!;
        return AnyOrUnset(operation.Methods, http.Method)
            && NoneOf(operation.NotMethods, http.Method)
            && AnyOrUnset(operation.Paths, http.Path)
            && NoneOf(operation.NotPaths, http.Path)
            && AnyOrUnset(operation.Hosts, http.Host, StringComparison.OrdinalIgnoreCase)
            && NoneOf(operation.NotHosts, http.Host, StringComparison.OrdinalIgnoreCase);
    }

    private static bool AnyOrUnset(IReadOnlyList<StringMatch> matches, string? value, StringComparison comparison = StringComparison.Ordinal)
    {
        if (matches.Count == 0)
        {
            return true;
        }

        for (int i = 0; i < matches.Count; i++)
        {
            if (matches[i].Matches(value, comparison))
            {
                return true;
            }
        }

        return false;
    }

    private static bool NoneOf(IReadOnlyList<StringMatch> matches, string? value, StringComparison comparison = StringComparison.Ordinal)
    {
        for (int i = 0; i < matches.Count; i++)
        {
            if (matches[i].Matches(value, comparison))
            {
                return false;
            }
        }

        return true;
    }

    private static bool AnyIpOrUnset(IReadOnlyList<System.Net.IPNetwork> blocks, AuthorizationRequest request)
    {
        if (blocks.Count == 0)
        {
            return true;
        }

        for (int i = 0; i < blocks.Count; i++)
        {
            if (IpBlock.Contains(blocks[i], request.SourceAddress))
            {
                return true;
            }
        }

        return false;
    }

    private static bool NoIpOf(IReadOnlyList<System.Net.IPNetwork> blocks, AuthorizationRequest request)
    {
        for (int i = 0; i < blocks.Count; i++)
        {
            if (IpBlock.Contains(blocks[i], request.SourceAddress))
            {
                return false;
            }
        }

        return true;
    }

    private static bool ContainsPort(IReadOnlyList<int> ports, int port)
    {
        for (int i = 0; i < ports.Count; i++)
        {
            if (ports[i] == port)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What one pass over the policies found.</summary>
    private struct EvaluationState
    {
        public EvaluationState()
        {
        }

        public AuthorizationPolicy? DenyPolicy;
        public int DenyRule = -1;
        public AuthorizationPolicy? AllowPolicy;
        public int AllowRule = -1;
        public bool AnyAllowApplies;
        public AuthorizationPolicy? AuditPolicy;
        public int AuditRule = -1;
    }
}
