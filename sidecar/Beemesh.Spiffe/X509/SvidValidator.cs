using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Beemesh.Spiffe.X509;

/// <summary>
/// Validates a presented X509-SVID chain the way the SPIFFE X509-SVID standard (§5) asks: path
/// validation to the trust bundle of the expected trust domain (the bundle's certificates are the
/// only roots; the system store is ignored), then the leaf's SPIFFE-specific rules.
/// Stateless; the caller passes the time so tests and rotation logic stay deterministic.
/// </summary>
public static class SvidValidator
{
    private const string SubjectAltNameOid = "2.5.29.17";

    /// <summary>
    /// Validates <paramref name="leaf"/> (plus optional <paramref name="intermediates"/>) against
    /// <paramref name="trustBundle"/> for <paramref name="trustDomain"/> at time <paramref name="now"/>.
    /// </summary>
    /// <param name="leaf">The peer's leaf certificate.</param>
    /// <param name="intermediates">Other certificates the peer presented, or null.</param>
    /// <param name="trustBundle">Root CA certificates of <paramref name="trustDomain"/>.</param>
    /// <param name="trustDomain">The trust domain the SVID must belong to, e.g. <c>example.org</c>.</param>
    /// <param name="now">Validation time.</param>
    /// <param name="spiffeId">The leaf's SPIFFE ID when it could be parsed, otherwise null.</param>
    public static SvidValidationResult Validate(
        X509Certificate2 leaf,
        X509Certificate2Collection? intermediates,
        X509Certificate2Collection trustBundle,
        string trustDomain,
        DateTimeOffset now,
        out SpiffeId? spiffeId)
    {
        ArgumentNullException.ThrowIfNull(leaf);
        ArgumentNullException.ThrowIfNull(trustBundle);
        spiffeId = null;

        SvidValidationResult idResult = TryGetSpiffeId(leaf, out spiffeId);
        if (idResult != SvidValidationResult.Valid)
        {
            return idResult;
        }

        // The extensions decode lazily: a value that is not valid DER throws here, not at load.
        X509KeyUsageFlags? keyUsages = null;
        try
        {
            foreach (X509Extension extension in leaf.Extensions)
            {
                if (extension is X509BasicConstraintsExtension { CertificateAuthority: true })
                {
                    return SvidValidationResult.LeafIsCa;
                }
            }

            foreach (X509Extension extension in leaf.Extensions)
            {
                if (extension is X509KeyUsageExtension ku)
                {
                    keyUsages = ku.KeyUsages;
                }
            }
        }
        catch (CryptographicException)
        {
            return SvidValidationResult.MalformedExtension;
        }

        const X509KeyUsageFlags forbidden = X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign;
        if (keyUsages is not { } usages
            || (usages & X509KeyUsageFlags.DigitalSignature) == 0
            || (usages & forbidden) != 0)
        {
            return SvidValidationResult.BadKeyUsage;
        }

        if (!string.Equals(spiffeId!.TrustDomain, trustDomain, StringComparison.Ordinal))
        {
            return SvidValidationResult.OtherTrustDomain;
        }

        DateTime utcNow = now.UtcDateTime;
        if (leaf.NotAfter.ToUniversalTime() < utcNow)
        {
            return SvidValidationResult.Expired;
        }

        if (leaf.NotBefore.ToUniversalTime() > utcNow)
        {
            return SvidValidationResult.NotYetValid;
        }

        if (trustBundle.Count == 0)
        {
            return SvidValidationResult.UntrustedChain;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trustBundle);
        if (intermediates is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        }

        // SPIFFE bundles are distributed out of band; there is no CRL/OCSP to consult.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationTime = utcNow;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        bool built = chain.Build(leaf);
        for (int i = 0; i < chain.ChainElements.Count; i++)
        {
            chain.ChainElements[i].Certificate.Dispose();
        }

        return built ? SvidValidationResult.Valid : SvidValidationResult.UntrustedChain;
    }

    /// <summary>
    /// Reads the single URI SAN of <paramref name="certificate"/> as a SPIFFE ID. Returns
    /// <see cref="SvidValidationResult.NoUriSan"/>, <see cref="SvidValidationResult.MultipleUriSans"/>,
    /// <see cref="SvidValidationResult.MalformedSpiffeId"/> or <see cref="SvidValidationResult.Valid"/>.
    /// </summary>
    public static SvidValidationResult TryGetSpiffeId(X509Certificate2 certificate, out SpiffeId? spiffeId)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        spiffeId = null;
        string? uri = null;
        int uriCount = 0;
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAltNameOid)
            {
                continue;
            }

            if (!TryReadUris(extension.RawData, ref uri, ref uriCount))
            {
                return SvidValidationResult.MalformedSpiffeId;
            }
        }

        if (uriCount == 0)
        {
            return SvidValidationResult.NoUriSan;
        }

        if (uriCount > 1)
        {
            return SvidValidationResult.MultipleUriSans;
        }

        return SpiffeId.TryParse(uri, out spiffeId) ? SvidValidationResult.Valid : SvidValidationResult.MalformedSpiffeId;
    }

    // RFC 5280 §4.2.1.6: GeneralNames ::= SEQUENCE OF GeneralName; uniformResourceIdentifier is
    // [6] IMPLICIT IA5String. The built-in SAN extension type does not expose URIs on all
    // platforms, so read the DER directly.
    private static bool TryReadUris(byte[] der, ref string? first, ref int count)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            AsnReader names = reader.ReadSequence();
            var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
            while (names.HasData)
            {
                Asn1Tag tag = names.PeekTag();
                if (tag.HasSameClassAndValue(uriTag))
                {
                    string value = names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag);
                    first ??= value;
                    count++;
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }

            return true;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }
}
