namespace Beemesh.Spiffe.X509;

/// <summary>
/// Outcome of <see cref="SvidValidator.Validate"/>. Values are checked in declaration order after
/// <see cref="Valid"/>, so a certificate with several faults reports the first one listed.
/// </summary>
public enum SvidValidationResult
{
    /// <summary>The chain leads to the trust bundle and the leaf is a well-formed X509-SVID.</summary>
    Valid = 0,

    /// <summary>The leaf has no URI subject alternative name (X509-SVID §2: exactly one is required).</summary>
    NoUriSan,

    /// <summary>The leaf carries more than one URI SAN (X509-SVID §2 forbids it).</summary>
    MultipleUriSans,

    /// <summary>The single URI SAN is not a valid SPIFFE ID.</summary>
    MalformedSpiffeId,

    /// <summary>The basicConstraints or keyUsage extension of the leaf is not valid DER.</summary>
    MalformedExtension,

    /// <summary>The leaf's basicConstraints says CA:true (X509-SVID §4.1: a leaf must not be a CA).</summary>
    LeafIsCa,

    /// <summary>
    /// keyUsage is missing, lacks digitalSignature, or sets keyCertSign/cRLSign (X509-SVID §4.3).
    /// </summary>
    BadKeyUsage,

    /// <summary>The SPIFFE ID belongs to a trust domain other than the expected one.</summary>
    OtherTrustDomain,

    /// <summary>The leaf's notAfter is before the validation time.</summary>
    Expired,

    /// <summary>The leaf's notBefore is after the validation time.</summary>
    NotYetValid,

    /// <summary>
    /// X509Chain could not build a valid path from the leaf to a root of the trust bundle
    /// (unknown issuer, bad signature, expired intermediate, empty bundle...).
    /// </summary>
    UntrustedChain,
}
