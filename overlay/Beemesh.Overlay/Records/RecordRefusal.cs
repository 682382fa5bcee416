namespace Beemesh.Overlay.Records;

/// <summary>Why a received record was refused.</summary>
public enum RecordRefusal
{
    /// <summary>The signature does not verify against the origin's key.</summary>
    BadSignature,
    /// <summary>The signer's certificate chain is not rooted in the trust domain.</summary>
    ForeignChain,
    /// <summary>The signer was revoked.</summary>
    RevokedSigner,
    /// <summary>A route signed by another node than the one it names.</summary>
    RouteSignerMismatch,
    /// <summary>A version not newer than the one held (replay or rollback).</summary>
    Replay,
    /// <summary>A lease or tombstone that has already expired.</summary>
    Expired,
}
