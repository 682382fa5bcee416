namespace Beemesh.Spiffe.WorkloadApi;

/// <summary>
/// Parses the Workload API address. The SPIFFE Workload Endpoint standard names the variable
/// <c>SPIFFE_ENDPOINT_SOCKET</c>; a unix address is written <c>unix:///abs/path</c> or
/// <c>unix:/abs/path</c>. TCP addresses are not supported here (the agent serves a unix socket,
/// which is what lets it attest callers by their credentials).
/// </summary>
public static class WorkloadApiEndpoint
{
    /// <summary>The environment variable the standard defines.</summary>
    public const string EnvironmentVariable = "SPIFFE_ENDPOINT_SOCKET";

    /// <summary>Returns the socket path in <paramref name="address"/>, or null when it is not a valid unix address.</summary>
    public static string? TryParseUnixPath(string? address)
    {
        if (string.IsNullOrEmpty(address) || !address.StartsWith("unix:", StringComparison.Ordinal))
        {
            return null;
        }

        string rest = address["unix:".Length..];
        if (rest.StartsWith("//", StringComparison.Ordinal))
        {
            // unix://host/path has an authority, which the standard forbids; unix:///path has an empty one.
            rest = rest[2..];
            if (!rest.StartsWith('/'))
            {
                return null;
            }
        }

        if (!rest.StartsWith('/') || rest.Length < 2 || rest.Contains('?') || rest.Contains('#'))
        {
            return null;
        }

        return rest;
    }

    /// <summary>
    /// Reads <see cref="EnvironmentVariable"/> and returns its socket path, or null when it is unset or invalid.
    /// </summary>
    public static string? FromEnvironment() => TryParseUnixPath(Environment.GetEnvironmentVariable(EnvironmentVariable));
}
