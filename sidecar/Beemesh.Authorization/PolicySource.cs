using System.Net;

namespace Beemesh.Authorization;

/// <summary>
/// Istio <c>rules[].from[].source</c>: who sends the request. Every non-empty field must match
/// (AND); within a field any value may match (OR); a <c>not…</c> field matches when no value matches.
/// An empty list means the field is not set. JWT request principals and remote (forwarded) IP
/// blocks are not supported and are refused by the loader.
/// </summary>
public sealed class PolicySource
{
    /// <summary>Peer identities, <c>&lt;trust-domain&gt;/ns/&lt;ns&gt;/sa/&lt;name&gt;</c>.</summary>
    public IReadOnlyList<StringMatch> Principals { get; init; } = [];

    /// <summary>Peer identities that must not match.</summary>
    public IReadOnlyList<StringMatch> NotPrincipals { get; init; } = [];

    /// <summary>Namespaces of the peer.</summary>
    public IReadOnlyList<StringMatch> Namespaces { get; init; } = [];

    /// <summary>Namespaces the peer must not be in.</summary>
    public IReadOnlyList<StringMatch> NotNamespaces { get; init; } = [];

    /// <summary>Source address ranges (exact CIDR match only).</summary>
    public IReadOnlyList<IPNetwork> IpBlocks { get; init; } = [];

    /// <summary>Source address ranges the peer must not be in.</summary>
    public IReadOnlyList<IPNetwork> NotIpBlocks { get; init; } = [];
}
