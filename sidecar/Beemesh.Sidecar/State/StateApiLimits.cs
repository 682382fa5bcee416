namespace Beemesh.Sidecar.State;

/// <summary>Limits of the state API, the same for HTTP and gRPC.</summary>
public static class StateApiLimits
{
    /// <summary>
    /// Largest request body (HTTP) or message (gRPC): 4 MiB, Dapr's default <c>max-body-size</c>
    /// and gRPC's default receive limit. A larger request is refused whole (HTTP 413, gRPC
    /// RESOURCE_EXHAUSTED), so no value can be larger either.
    /// </summary>
    public const int MaxRequestBytes = 4 * 1024 * 1024;
}
