using Beemesh.Spiffe;

namespace Beemesh.Identity.Attestation;

/// <summary>Decides which SPIFFE ID, if any, a Workload API caller is entitled to.</summary>
public interface IWorkloadAttestor
{
    /// <summary>Returns the caller's SPIFFE ID, or null when the caller has no identity (the server answers PermissionDenied).</summary>
    SpiffeId? Attest(PeerCredentials caller);
}
