using Grpc.Core;

namespace Beemesh.Sidecar.State;

/// <summary>
/// A refused state request as Dapr reports it: the HTTP status, the gRPC status, and the body
/// <c>{"errorCode":"ERR_...","message":"..."}</c> (the gRPC status carries the message).
/// </summary>
/// <param name="HttpStatus">The HTTP status code.</param>
/// <param name="GrpcStatus">The gRPC status code.</param>
/// <param name="ErrorCode">Dapr's error code, such as <c>ERR_STATE_STORE_NOT_FOUND</c>.</param>
/// <param name="Message">One line for the caller.</param>
public sealed record StateApiError(int HttpStatus, StatusCode GrpcStatus, string ErrorCode, string Message)
{
    /// <summary>400 / INVALID_ARGUMENT <c>ERR_MALFORMED_REQUEST</c>.</summary>
    public static StateApiError Malformed(string message) =>
        new(400, StatusCode.InvalidArgument, "ERR_MALFORMED_REQUEST", message);

    /// <summary>400 / INVALID_ARGUMENT <c>ERR_STATE_STORE_NOT_FOUND</c>.</summary>
    public static StateApiError StoreNotFound(string? name) =>
        new(400, StatusCode.InvalidArgument, "ERR_STATE_STORE_NOT_FOUND", $"state store {name} is not found");

    /// <summary>413 / RESOURCE_EXHAUSTED: the request is over <see cref="StateApiLimits.MaxRequestBytes"/>.</summary>
    public static StateApiError TooLarge() =>
        new(413, StatusCode.ResourceExhausted, "ERR_REQUEST_TOO_LARGE",
            $"the request is larger than the {StateApiLimits.MaxRequestBytes / (1024 * 1024)} MiB limit");
}
