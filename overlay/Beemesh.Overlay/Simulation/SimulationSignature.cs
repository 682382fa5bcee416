using System.Buffers.Binary;
using Beemesh.Overlay.Records;

namespace Beemesh.Overlay.Simulation;

/// <summary>
/// Stand-in signatures for the simulator: an 8-byte keyed hash of the record's fields under a key
/// derived from the origin's id. Cheap enough for 10^5 nodes and still tied to the origin and the
/// content, so forged or altered records are refused as in the agent (which uses X.509 keys).
/// </summary>
public sealed class SimulationSignature(ulong domainKey) : IRecordSigner, IRecordVerifier
{
    /// <summary>Node ids whose records are refused as signed by a revoked signer.</summary>
    public HashSet<ulong> Revoked { get; } = [];

    /// <inheritdoc />
    public byte[] Sign(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var signature = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(signature, Hash(record, domainKey));
        return signature;
    }

    /// <inheritdoc />
    public RecordRefusal? Verify(OverlayRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Signature.Length != 8)
        {
            return RecordRefusal.BadSignature;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(record.Signature) != Hash(record, domainKey))
        {
            // Signed under another domain's key, or not at all.
            return Hash(record, ~domainKey) == BinaryPrimitives.ReadUInt64BigEndian(record.Signature) ? RecordRefusal.ForeignChain : RecordRefusal.BadSignature;
        }

        return Revoked.Contains(record.Origin) ? RecordRefusal.RevokedSigner : null;
    }

    /// <summary>A signer of a foreign trust domain: its records verify as <see cref="RecordRefusal.ForeignChain"/> here.</summary>
    public SimulationSignature Foreign() => new(~domainKey);

    private static ulong Hash(OverlayRecord r, ulong domain)
    {
        // FNV-1a over the fields, keyed by the domain and the origin.
        ulong h = 14695981039346656037UL ^ domain;
        h = Mix(h, r.Origin);
        h = Mix(h, (ulong)r.Kind);
        foreach (char c in r.Key)
        {
            h = Mix(h, c);
        }

        h = Mix(h, r.Subject);
        h = Mix(h, (ulong)r.Version.Time.Physical);
        h = Mix(h, (ulong)r.Version.Time.Logical);
        h = Mix(h, (ulong)r.ExpiresAt);
        h = Mix(h, r.Tombstone ? 1UL : 0UL);
        foreach (byte b in r.Payload.Span)
        {
            h = Mix(h, b);
        }

        return h;
    }

    private static ulong Mix(ulong h, ulong v) => (h ^ v) * 1099511628211UL;
}
