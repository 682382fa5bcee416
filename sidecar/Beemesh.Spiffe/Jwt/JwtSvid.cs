namespace Beemesh.Spiffe.Jwt;

/// <summary>A JWT-SVID as returned by FetchJWTSVID.</summary>
/// <param name="Id">The SPIFFE ID (the token's <c>sub</c>).</param>
/// <param name="Token">The token in JWS compact serialization.</param>
/// <param name="Hint">Operator hint, or empty.</param>
public sealed record JwtSvid(SpiffeId Id, string Token, string Hint);
