using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// Checks a record signed by <see cref="X509RecordSigner"/>: the carried certificate must be a node
/// SVID signed directly by the trust domain's root (<see cref="NodeSvidValidator"/>), valid now, of a
/// node whose id (<see cref="NodeIds"/>) is the record's origin and that is not revoked; the ECDSA
/// signature must verify over the record. Validated certificates are cached by their bytes' hash.
/// </summary>
public sealed class X509RecordVerifier : IRecordVerifier
{
    private const int SignatureLength = 64;
    private const int MaxCached = 4096;

    private readonly X509Certificate2Collection _bundle;
    private readonly string _trustDomain;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Signer> _cache = new(StringComparer.Ordinal);

    /// <summary>Verifies against <paramref name="root"/> of <paramref name="trustDomain"/>.</summary>
    public X509RecordVerifier(X509Certificate2 root, string trustDomain, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        _bundle = [X509CertificateLoader.LoadCertificate(root.RawData)];
        _trustDomain = trustDomain;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Node ids whose records are refused (revoked nodes).</summary>
    public ConcurrentDictionary<ulong, bool> Revoked { get; } = new();

    /// <summary>The node name that signed <paramref name="record"/>, when its signature parses and its certificate was seen valid; else null.</summary>
    public string? SignerName(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return TrySplit(record.Signature, out ReadOnlySpan<byte> der, out _) && _cache.TryGetValue(Key(der), out Signer? s) ? s.Name : null;
    }

    /// <inheritdoc />
    public RecordRefusal? Verify(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!TrySplit(record.Signature, out ReadOnlySpan<byte> der, out ReadOnlySpan<byte> signature))
        {
            return RecordRefusal.BadSignature;
        }

        DateTimeOffset now = _time.GetUtcNow();
        string key = Key(der);
        if (!_cache.TryGetValue(key, out Signer? signer) || now > signer.NotAfter)
        {
            X509Certificate2 certificate;
            try
            {
                certificate = X509CertificateLoader.LoadCertificate(der);
            }
            catch (CryptographicException)
            {
                return RecordRefusal.BadSignature;
            }

            using (certificate)
            {
                string? name = NodeSvidValidator.Validate(certificate, _bundle, _trustDomain, now, out _);
                if (name is null)
                {
                    return RecordRefusal.ForeignChain;
                }

                ECDsa? publicKey = certificate.GetECDsaPublicKey();
                if (publicKey is null)
                {
                    return RecordRefusal.ForeignChain;
                }

                signer = new Signer(name, NodeIds.Of(_trustDomain, name), publicKey, certificate.NotAfter.ToUniversalTime());
            }

            if (_cache.Count >= MaxCached)
            {
                _cache.Clear();
            }

            _cache[key] = signer;
        }

        if (signer.Id != record.Origin)
        {
            // A valid node signed a record claiming another node's origin.
            return RecordRefusal.BadSignature;
        }

        if (!signer.Key.VerifyData(record.SignedBytes(), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
        {
            return RecordRefusal.BadSignature;
        }

        if (Revoked.ContainsKey(record.Origin))
        {
            return RecordRefusal.RevokedSigner;
        }

        // A revocation stands only with the root's own signature over the node it names, and is never
        // withdrawn (a tombstone for it is refused).
        if (record.Kind == RecordKind.Revocation
            && (record.Tombstone
                || record.Subject != NodeIds.Of(_trustDomain, record.Key)
                || !NodeRevocation.Verify(_bundle[0], _trustDomain, record.Key, record.Payload.Span)))
        {
            return RecordRefusal.BadSignature;
        }

        return null;
    }

    private static bool TrySplit(byte[] field, out ReadOnlySpan<byte> certificate, out ReadOnlySpan<byte> signature)
    {
        certificate = default;
        signature = default;
        if (field.Length < 2 + SignatureLength)
        {
            return false;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(field);
        if (field.Length != 2 + length + SignatureLength || length == 0)
        {
            return false;
        }

        certificate = field.AsSpan(2, length);
        signature = field.AsSpan(2 + length);
        return true;
    }

    private static string Key(ReadOnlySpan<byte> der) => Convert.ToHexString(SHA256.HashData(der));

    private sealed record Signer(string Name, ulong Id, ECDsa Key, DateTimeOffset NotAfter);
}
