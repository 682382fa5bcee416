using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace Beemesh.Spiffe.Jwt;

/// <summary>
/// Validates a JWT-SVID (JWS compact serialization, ES256) against the JWT bundle of a trust domain,
/// an audience and a time, per the SPIFFE JWT-SVID standard §4.
/// </summary>
public static class JwtSvidValidator
{
    /// <summary>
    /// Validates <paramref name="token"/>. On <see cref="JwtSvidValidationResult.Valid"/>,
    /// <paramref name="spiffeId"/> is the subject and <paramref name="claimsJson"/> the raw payload JSON.
    /// </summary>
    public static JwtSvidValidationResult Validate(
        string token,
        string audience,
        JwtBundle bundle,
        string trustDomain,
        DateTimeOffset now,
        out SpiffeId? spiffeId,
        out string? claimsJson)
    {
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(bundle);
        spiffeId = null;
        claimsJson = null;
        string[] parts = token.Split('.');
        if (parts.Length != 3)
        {
            return JwtSvidValidationResult.Malformed;
        }

        byte[] header;
        byte[] payload;
        byte[] signature;
        try
        {
            header = Base64Url.DecodeFromChars(parts[0]);
            payload = Base64Url.DecodeFromChars(parts[1]);
            signature = Base64Url.DecodeFromChars(parts[2]);
        }
        catch (FormatException)
        {
            return JwtSvidValidationResult.Malformed;
        }

        try
        {
            using JsonDocument headerDoc = JsonDocument.Parse(header);
            using JsonDocument payloadDoc = JsonDocument.Parse(payload);
            if (headerDoc.RootElement.ValueKind != JsonValueKind.Object || payloadDoc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return JwtSvidValidationResult.Malformed;
            }

            if (!headerDoc.RootElement.TryGetProperty("alg", out JsonElement alg) || alg.ValueKind != JsonValueKind.String || alg.GetString() != "ES256")
            {
                return JwtSvidValidationResult.UnsupportedAlgorithm;
            }

            if (!headerDoc.RootElement.TryGetProperty("kid", out JsonElement kid) || kid.ValueKind != JsonValueKind.String
                || !bundle.Keys.TryGetValue(kid.GetString()!, out ECDsa? key))
            {
                return JwtSvidValidationResult.UnknownKey;
            }

            // RFC 7515 §5.2: the signature covers the ASCII of "header.payload" as transmitted.
            byte[] signingInput = System.Text.Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
            if (!key.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
            {
                return JwtSvidValidationResult.BadSignature;
            }

            JsonElement claims = payloadDoc.RootElement;
            if (!claims.TryGetProperty("sub", out JsonElement sub) || sub.ValueKind != JsonValueKind.String
                || !SpiffeId.TryParse(sub.GetString(), out SpiffeId? id)
                || !string.Equals(id.TrustDomain, trustDomain, StringComparison.Ordinal))
            {
                return JwtSvidValidationResult.BadSubject;
            }

            if (!claims.TryGetProperty("exp", out JsonElement exp) || exp.ValueKind != JsonValueKind.Number
                || !exp.TryGetInt64(out long expSeconds) || expSeconds <= now.ToUnixTimeSeconds())
            {
                return JwtSvidValidationResult.Expired;
            }

            if (!HasAudience(claims, audience))
            {
                return JwtSvidValidationResult.AudienceMismatch;
            }

            spiffeId = id;
            claimsJson = System.Text.Encoding.UTF8.GetString(payload);
            return JwtSvidValidationResult.Valid;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that is not valid UTF-8, or escapes a lone surrogate
            // (JsonElement.GetString), anywhere in the header or the claims.
            return JwtSvidValidationResult.Malformed;
        }
    }

    // RFC 7519 §4.1.3: aud is a string or an array of strings.
    private static bool HasAudience(JsonElement claims, string audience)
    {
        if (!claims.TryGetProperty("aud", out JsonElement aud))
        {
            return false;
        }

        if (aud.ValueKind == JsonValueKind.String)
        {
            return aud.GetString() == audience;
        }

        if (aud.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement item in aud.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String && item.GetString() == audience)
                {
                    return true;
                }
            }
        }

        return false;
    }
}
