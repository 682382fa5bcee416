using Beemesh.Identity.Attestation;

namespace Beemesh.Identity.WorkloadApi;

/// <summary>Connection feature holding the caller's SO_PEERCRED, read once when the connection is accepted.</summary>
internal sealed class PeerCredentialsFeature(PeerCredentials? credentials)
{
    public PeerCredentials? Credentials { get; } = credentials;
}
