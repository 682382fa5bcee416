using Beemesh.Spiffe.Processes;

namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// Connection feature holding the calling process, bound when the connection was accepted
/// (SO_PEERCRED, pidfd, start time) and re-checked on every call.
/// </summary>
internal sealed class PeerCredentialsFeature(CallerProcess? caller)
{
    public CallerProcess? Caller { get; } = caller;
}
