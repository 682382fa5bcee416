using System.Net;

namespace Beemesh.Authorization;

/// <summary>
/// What the sidecar knows about one inbound connection (or one HTTP request on it) when it asks
/// <see cref="PolicyEvaluator"/> for a decision.
/// </summary>
public sealed class AuthorizationRequest
{
    /// <summary>Namespace of the workload being called (selects which policies apply).</summary>
    public required string WorkloadNamespace { get; init; }

    /// <summary>Labels of the workload being called, matched against policy selectors.</summary>
    public IReadOnlyDictionary<string, string> WorkloadLabels { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The caller's verified identity as <c>&lt;trust-domain&gt;/ns/&lt;ns&gt;/sa/&lt;name&gt;</c>, i.e. its
    /// SPIFFE ID without <c>spiffe://</c>; null when the peer presented no verified identity.
    /// </summary>
    public string? SourcePrincipal { get; init; }

    /// <summary>The caller's namespace (from its identity); null when unknown.</summary>
    public string? SourceNamespace { get; init; }

    /// <summary>The caller's address; null when unknown.</summary>
    public IPAddress? SourceAddress { get; init; }

    /// <summary>The port the caller connected to on the workload.</summary>
    public int DestinationPort { get; init; }

    /// <summary>HTTP attributes; null for a plain TCP connection.</summary>
    public HttpRequestAttributes? Http { get; init; }
}
