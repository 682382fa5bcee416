namespace Beemesh.Authorization;

/// <summary>
/// Istio <c>spec.rules[]</c>. A rule matches when its <see cref="From"/>, <see cref="To"/> and
/// <see cref="When"/> all match (AND). Within <see cref="From"/> or <see cref="To"/> any entry may match
/// (OR); every <see cref="When"/> condition must match. An empty list means the part is not set, so a
/// rule with nothing set (<c>- {}</c>) matches every request.
/// </summary>
public sealed class PolicyRule
{
    /// <summary>Sources (<c>from[].source</c>); any may match.</summary>
    public IReadOnlyList<PolicySource> From { get; init; } = [];

    /// <summary>Operations (<c>to[].operation</c>); any may match.</summary>
    public IReadOnlyList<PolicyOperation> To { get; init; } = [];

    /// <summary>Conditions (<c>when[]</c>); all must match.</summary>
    public IReadOnlyList<PolicyCondition> When { get; init; } = [];

    /// <summary>
    /// Whether any operation or condition of the rule uses an HTTP-only field. On plain TCP such an
    /// ALLOW rule is invalid for Istio and never matches; a DENY rule ignores just those fields.
    /// </summary>
    public bool HasHttpFields
    {
        get
        {
            for (int i = 0; i < To.Count; i++)
            {
                if (To[i].HasHttpFields)
                {
                    return true;
                }
            }

            for (int i = 0; i < When.Count; i++)
            {
                if (When[i].IsHttpOnly)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
