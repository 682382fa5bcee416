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
    private volatile SigningKey _current;

    /// <summary>Signs with <paramref name="nodeSvid"/>'s private key.</summary>
    public X509RecordSigner(X509Certificate2 nodeSvid)
    {
        _current = KeyOf(nodeSvid);
    }

    private sealed record SigningKey(ECDsa Key, byte[] Certificate);

    /// <summary>
    /// Signs with <paramref name="nodeSvid"/> (a renewed node SVID) from now on. Records signed before
    /// stay valid on every node until they expire: receivers check each record's own certificate.
    /// </summary>
    public void Use(X509Certificate2 nodeSvid) => _current = KeyOf(nodeSvid);

    /// <inheritdoc />
    public byte[] Sign(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        SigningKey current = _current;
        byte[] signature = current.Key.SignData(record.SignedBytes(), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var result = new byte[2 + current.Certificate.Length + signature.Length];
        BinaryPrimitives.WriteUInt16BigEndian(result, (ushort)current.Certificate.Length);
        current.Certificate.CopyTo(result, 2);
        signature.CopyTo(result, 2 + current.Certificate.Length);
        return result;
    }

    private static SigningKey KeyOf(X509Certificate2 nodeSvid)
    {
        ArgumentNullException.ThrowIfNull(nodeSvid);
        ECDsa key = nodeSvid.GetECDsaPrivateKey() ?? throw new ArgumentException("the node SVID carries no ECDSA private key", nameof(nodeSvid));
        byte[] certificate = nodeSvid.RawData;
        if (certificate.Length + 2 + 64 > OverlayRecord.MaxSignatureLength)
        {
            key.Dispose();
            throw new ArgumentException("the node SVID is too large to carry in a record signature", nameof(nodeSvid));
        }

        return new SigningKey(key, certificate);
    }
}
