namespace Beemesh.Authorization;

/// <summary>
/// The request attribute a <see cref="PolicyCondition"/> (Istio <c>when[].key</c>) reads. Only these
/// keys are supported; the loader refuses every other Istio key by name.
/// </summary>
public enum ConditionAttribute
{
    /// <summary><c>source.ip</c>: values are addresses or CIDR ranges.</summary>
    SourceIp,

    /// <summary><c>source.namespace</c>: values use exact/prefix/suffix/presence matching.</summary>
    SourceNamespace,

    /// <summary><c>source.principal</c>: values use exact/prefix/suffix/presence matching.</summary>
    SourcePrincipal,

    /// <summary><c>destination.port</c>: values are port numbers.</summary>
    DestinationPort,

    /// <summary><c>request.headers[name]</c> (HTTP-only): values use exact/prefix/suffix/presence matching.</summary>
    RequestHeader,
}
