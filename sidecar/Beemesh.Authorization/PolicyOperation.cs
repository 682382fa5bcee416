namespace Beemesh.Authorization;

/// <summary>
/// Istio <c>rules[].to[].operation</c>: what the request does. Same AND/OR/not rules as
/// <see cref="PolicySource"/>. <see cref="Methods"/>, <see cref="Paths"/>, <see cref="Hosts"/> and their
/// <c>not…</c> forms are HTTP-only: see <see cref="HasHttpFields"/> for what happens on plain TCP.
/// </summary>
public sealed class PolicyOperation
{
    /// <summary>Destination ports (exact match only).</summary>
    public IReadOnlyList<int> Ports { get; init; } = [];

    /// <summary>Destination ports that must not match.</summary>
    public IReadOnlyList<int> NotPorts { get; init; } = [];

    /// <summary>HTTP methods (HTTP-only).</summary>
    public IReadOnlyList<StringMatch> Methods { get; init; } = [];

    /// <summary>HTTP methods that must not match (HTTP-only).</summary>
    public IReadOnlyList<StringMatch> NotMethods { get; init; } = [];

    /// <summary>HTTP paths (HTTP-only); compared as sent, without normalization.</summary>
    public IReadOnlyList<StringMatch> Paths { get; init; } = [];

    /// <summary>HTTP paths that must not match (HTTP-only).</summary>
    public IReadOnlyList<StringMatch> NotPaths { get; init; } = [];

    /// <summary>HTTP hosts (HTTP-only), compared case-insensitively as Istio does.</summary>
    public IReadOnlyList<StringMatch> Hosts { get; init; } = [];

    /// <summary>HTTP hosts that must not match (HTTP-only).</summary>
    public IReadOnlyList<StringMatch> NotHosts { get; init; } = [];

    /// <summary>
    /// Whether any HTTP-only field is set. On a plain TCP connection Istio cannot evaluate these:
    /// an ALLOW rule using them never matches, while a DENY rule ignores them and matches on its
    /// remaining fields, so both fail closed.
    /// </summary>
    public bool HasHttpFields =>
        Methods.Count + NotMethods.Count + Paths.Count + NotPaths.Count + Hosts.Count + NotHosts.Count != 0;
}
