namespace Beemesh.Spiffe.Jwt;

/// <summary>Outcome of <see cref="JwtSvidValidator.Validate"/>, checked in declaration order.</summary>
public enum JwtSvidValidationResult
{
    /// <summary>Signature, expiry, audience and subject all check out.</summary>
    Valid = 0,

    /// <summary>Not three base64url parts of JSON objects, or a required claim has the wrong type.</summary>
    Malformed,

    /// <summary>The <c>alg</c> header is not ES256 (JWT-SVID §3 lists the allowed algorithms; this mesh issues ES256 only).</summary>
    UnsupportedAlgorithm,

    /// <summary>The <c>kid</c> header names no key of the trust domain's bundle.</summary>
    UnknownKey,

    /// <summary>The signature does not verify with the named key.</summary>
    BadSignature,

    /// <summary>The <c>sub</c> claim is missing or not a SPIFFE ID of the expected trust domain.</summary>
    BadSubject,

    /// <summary>The <c>exp</c> claim is missing or in the past (JWT-SVID §3 makes exp mandatory).</summary>
    Expired,

    /// <summary>The <c>aud</c> claim does not contain the validating party's audience.</summary>
    AudienceMismatch,
}
