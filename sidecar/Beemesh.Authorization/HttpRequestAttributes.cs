namespace Beemesh.Authorization;

/// <summary>
/// The HTTP part of an <see cref="AuthorizationRequest"/>, present only where a port is served as HTTP
/// (per-request authorization). Plain TCP connections have none, which decides how HTTP-only policy
/// fields are treated.
/// </summary>
public sealed class HttpRequestAttributes
{
    /// <summary>The request method, e.g. <c>GET</c> (compared case-sensitively, as Istio does).</summary>
    public required string Method { get; init; }

    /// <summary>The request path as sent, including any query string.</summary>
    public required string Path { get; init; }

    /// <summary>The Host / :authority value; compared case-insensitively.</summary>
    public string? Host { get; init; }

    /// <summary>
    /// Request headers for <c>request.headers[name]</c> conditions. Looked up by lower-case name, so
    /// build it with <see cref="StringComparer.OrdinalIgnoreCase"/> or lower-case keys.
    /// </summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();
}
