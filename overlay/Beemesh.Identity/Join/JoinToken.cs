using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Beemesh.Identity.Join;

/// <summary>
/// A one-time join token, printed as <c>bmt1.&lt;id&gt;.&lt;secret&gt;.sha256-&lt;fingerprint&gt;</c>:
/// <list type="bullet">
/// <item><c>bmt1</c>: format and version;</item>
/// <item>id: 8 characters of the RFC 4648 base32 alphabet in lower case (<c>a-z2-7</c>, 40 bits),
/// which names the token on the first node and is not secret;</item>
/// <item>secret: 26 characters of the same alphabet (130 bits from the system CSPRNG), never sent
/// over the network: the joiner proves it with an HMAC bound to the TLS session;</item>
/// <item>fingerprint: SHA-256 of the trust domain root certificate's DER, lowercase hex (as
/// <c>openssl x509 -noout -fingerprint -sha256</c> prints it, without colons), which the joiner
/// checks before trusting the node it joins (as kubeadm's discovery-token-ca-cert-hash).</item>
/// </list>
/// </summary>
public sealed record JoinToken
{
    /// <summary>The format tag, first field of the printed token.</summary>
    public const string Format = "bmt1";

    /// <summary>Length of the token id.</summary>
    public const int IdLength = 8;

    /// <summary>Length of the secret (26 × 5 = 130 bits).</summary>
    public const int SecretLength = 26;

    private const string FingerprintPrefix = "sha256-";
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    private static readonly byte[] VerifierLabel = "beemesh join token verifier v1"u8.ToArray();

    private JoinToken(string id, string secret, string rootFingerprint)
    {
        Id = id;
        Secret = secret;
        RootFingerprint = rootFingerprint;
    }

    /// <summary>The token id (not secret).</summary>
    public string Id { get; }

    /// <summary>The secret.</summary>
    public string Secret { get; }

    /// <summary>SHA-256 of the root certificate's DER, 64 lowercase hex digits.</summary>
    public string RootFingerprint { get; }

    /// <summary>A new token for <paramref name="root"/> with a fresh random id and secret.</summary>
    public static JoinToken Create(X509Certificate2 root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return new JoinToken(Random(IdLength), Random(SecretLength), FingerprintOf(root));
    }

    internal static JoinToken CreateWithFingerprint(string rootFingerprint) => new(Random(IdLength), Random(SecretLength), rootFingerprint);

    /// <summary>SHA-256 of <paramref name="certificate"/>'s DER encoding, lowercase hex.</summary>
    public static string FingerprintOf(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
    }

    /// <summary>Parses a printed token; on failure <paramref name="error"/> says which part is wrong.</summary>
    public static bool TryParse(string? text, out JoinToken? token, out JoinTokenError error)
    {
        token = null;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            error = JoinTokenError.Empty;
            return false;
        }

        string[] fields = text.Split('.');
        if (fields[0] != Format)
        {
            error = JoinTokenError.UnknownFormat;
            return false;
        }

        if (fields.Length != 4)
        {
            error = JoinTokenError.WrongFieldCount;
            return false;
        }

        if (!IsBase32(fields[1], IdLength))
        {
            error = JoinTokenError.BadId;
            return false;
        }

        if (!IsBase32(fields[2], SecretLength))
        {
            error = JoinTokenError.BadSecret;
            return false;
        }

        string fingerprint = fields[3];
        if (!fingerprint.StartsWith(FingerprintPrefix, StringComparison.Ordinal)
            || fingerprint.Length != FingerprintPrefix.Length + 64
            || fingerprint.AsSpan(FingerprintPrefix.Length).IndexOfAnyExcept("0123456789abcdef") >= 0)
        {
            error = JoinTokenError.BadFingerprint;
            return false;
        }

        token = new JoinToken(fields[1], fields[2], fingerprint[FingerprintPrefix.Length..]);
        error = JoinTokenError.None;
        return true;
    }

    /// <summary>Parses a printed token or throws <see cref="FormatException"/> with a one-line reason.</summary>
    public static JoinToken Parse(string text) =>
        TryParse(text, out JoinToken? token, out JoinTokenError error) ? token! : throw new FormatException(Describe(error));

    /// <summary>One line for the user about <paramref name="error"/>.</summary>
    public static string Describe(JoinTokenError error) => error switch
    {
        JoinTokenError.None => "the token is well-formed",
        JoinTokenError.Empty => "the join token is empty",
        JoinTokenError.UnknownFormat => $"the join token does not start with '{Format}.' (print one with 'beemesh token create')",
        JoinTokenError.WrongFieldCount => $"the join token must have four fields: {Format}.ID.SECRET.sha256-FINGERPRINT",
        JoinTokenError.BadId => $"the join token's id must be {IdLength} characters of a-z and 2-7",
        JoinTokenError.BadSecret => $"the join token's secret must be {SecretLength} characters of a-z and 2-7",
        JoinTokenError.BadFingerprint => "the join token's last field must be sha256- and 64 lowercase hex digits",
        _ => error.ToString(),
    };

    /// <summary>
    /// The value the first node stores instead of the secret: HMAC-SHA256 keyed with the secret over a
    /// fixed label. It cannot be turned back into the secret; it is the key of the join proof
    /// (<see cref="JoinProof"/>), so the store that keeps it is as private as the root key beside it.
    /// </summary>
    public byte[] Verifier() => HMACSHA256.HashData(Encoding.ASCII.GetBytes(Secret), VerifierLabel);

    /// <summary>The printed form, <c>bmt1.ID.SECRET.sha256-FINGERPRINT</c>.</summary>
    public override string ToString() => $"{Format}.{Id}.{Secret}.{FingerprintPrefix}{RootFingerprint}";

    private static string Random(int length) => new(RandomNumberGenerator.GetItems<char>(Alphabet, length));

    private static bool IsBase32(string field, int length) => field.Length == length && field.AsSpan().IndexOfAnyExcept(Alphabet) < 0;
}
