namespace Beemesh.State.Api;

/// <summary>
/// The variables Dapr's SDKs read to find the sidecar's API, as a workload gets them: from
/// <c>beemesh run</c> in its command's environment, and from <c>beemesh inject</c> in each app
/// container of a pod (where the sidecar container shares the pod's loopback). One list for both.
/// </summary>
public static class DaprEnvironment
{
    /// <summary>Dapr's HTTP port, where apps look by default.</summary>
    public const int HttpPort = 3500;

    /// <summary>Dapr's gRPC port.</summary>
    public const int GrpcPort = 50001;

    /// <summary>
    /// The variables, in the order they are written, for listeners on 127.0.0.1:<see cref="HttpPort"/>
    /// and :<see cref="GrpcPort"/> and the app id <paramref name="appId"/> (keys are scoped to it).
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> For(string appId)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        return
        [
            new("APP_ID", appId),
            new("DAPR_HTTP_PORT", "3500"),
            new("DAPR_GRPC_PORT", "50001"),
            new("DAPR_HTTP_ENDPOINT", "http://127.0.0.1:3500"),
            new("DAPR_GRPC_ENDPOINT", "http://127.0.0.1:50001"),
        ];
    }
}
