using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// Signs records with the node SVID key: the signature field carries the node SVID (DER, with a
/// 2-byte big-endian length) followed by the ECDSA P-256 / SHA-256 signature (IEEE P1363, 64 bytes)
/// over <see cref="OverlayRecord.SignedBytes"/>. Carrying the certificate lets every receiver check
/// the signer without asking anyone (<see cref="X509RecordVerifier"/>).
/// </summary>
public sealed class X509RecordSigner : IRecordSigner
{
    private readonly ECDsa _key;
    private readonly byte[] _certificate;

    /// <summary>Signs with <paramref name="nodeSvid"/>'s private key.</summary>
    public X509RecordSigner(X509Certificate2 nodeSvid)
    {
        ArgumentNullException.ThrowIfNull(nodeSvid);
        _key = nodeSvid.GetECDsaPrivateKey() ?? throw new ArgumentException("the node SVID carries no ECDSA private key", nameof(nodeSvid));
        _certificate = nodeSvid.RawData;
        if (_certificate.Length + 2 + 64 > OverlayRecord.MaxSignatureLength)
        {
            throw new ArgumentException("the node SVID is too large to carry in a record signature", nameof(nodeSvid));
        }
    }

    /// <inheritdoc />
    public byte[] Sign(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        byte[] signature = _key.SignData(record.SignedBytes(), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var result = new byte[2 + _certificate.Length + signature.Length];
        BinaryPrimitives.WriteUInt16BigEndian(result, (ushort)_certificate.Length);
        _certificate.CopyTo(result, 2);
        signature.CopyTo(result, 2 + _certificate.Length);
        return result;
    }
}
