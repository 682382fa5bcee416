using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace Beemesh.Spiffe.Jwt;

/// <summary>
/// The JWT signing keys of one trust domain, exchanged as a JWKS document (RFC 7517) with the
/// SPIFFE bundle convention <c>"use": "jwt-svid"</c>. Only P-256 EC keys (ES256) are kept; other
/// keys in a parsed document are ignored, as the SPIFFE bundle format allows.
/// Owns the <see cref="ECDsa"/> instances it creates when parsing.
/// </summary>
public sealed class JwtBundle
{
    private readonly Dictionary<string, ECDsa> _keys;

    /// <summary>Creates a bundle from key id → public key.</summary>
    public JwtBundle(IReadOnlyDictionary<string, ECDsa> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _keys = new Dictionary<string, ECDsa>(keys, StringComparer.Ordinal);
    }

    /// <summary>Signing keys by key id (<c>kid</c>).</summary>
    public IReadOnlyDictionary<string, ECDsa> Keys => _keys;

    /// <summary>
    /// The key id used for <paramref name="key"/>: base64url SHA-256 of its SubjectPublicKeyInfo,
    /// so every party derives the same id from the key alone.
    /// </summary>
    public static string KeyIdOf(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        byte[] spki = key.ExportSubjectPublicKeyInfo();
        return Base64Url.EncodeToString(SHA256.HashData(spki));
    }

    /// <summary>Serializes the keys as a JWKS document (UTF-8 JSON).</summary>
    public byte[] ToJwks()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("keys");
            foreach (KeyValuePair<string, ECDsa> pair in _keys)
            {
                ECParameters p = pair.Value.ExportParameters(includePrivateParameters: false);
                writer.WriteStartObject();
                writer.WriteString("kty", "EC");
                writer.WriteString("use", "jwt-svid");
                writer.WriteString("kid", pair.Key);
                writer.WriteString("crv", "P-256");
                writer.WriteString("x", Base64Url.EncodeToString(p.Q.X));
                writer.WriteString("y", Base64Url.EncodeToString(p.Q.Y));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Parses a JWKS document; returns false when it is not JSON with a <c>keys</c> array.</summary>
    public static bool TryParse(ReadOnlySpan<byte> jwks, out JwtBundle? bundle)
    {
        bundle = null;
        var keys = new Dictionary<string, ECDsa>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(jwks);
            using JsonDocument doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("keys", out JsonElement array)
                || array.ValueKind != JsonValueKind.Array)
            {
                return false;
            }

            foreach (JsonElement key in array.EnumerateArray())
            {
                if (key.ValueKind != JsonValueKind.Object
                    || GetString(key, "kty") != "EC"
                    || GetString(key, "crv") != "P-256"
                    || GetString(key, "kid") is not { Length: > 0 } kid
                    || GetString(key, "x") is not { } x
                    || GetString(key, "y") is not { } y)
                {
                    continue;
                }

                var parameters = new ECParameters
                {
                    Curve = ECCurve.NamedCurves.nistP256,
                    Q = new ECPoint { X = Base64Url.DecodeFromChars(x), Y = Base64Url.DecodeFromChars(y) },
                };
                try
                {
                    keys[kid] = ECDsa.Create(parameters);
                }
                catch (CryptographicException)
                {
                    // Not a point on the curve: skip the key, keep the rest of the bundle.
                }
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            // InvalidOperationException: a string that is not valid UTF-8 or escapes a lone surrogate.
            return false;
        }

        bundle = new JwtBundle(keys);
        return true;
    }

    private static string? GetString(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
