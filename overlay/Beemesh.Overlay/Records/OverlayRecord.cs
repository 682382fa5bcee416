using Beemesh.Overlay.Codec;

namespace Beemesh.Overlay.Records;

/// <summary>
/// A signed, versioned record: kind and key name its slot, the version (HLC + origin) orders the
/// copies of that slot, a tombstone marks a deletion, and <see cref="ExpiresAt"/> ends a lease or a
/// tombstone (0: never). Immutable: a relay passes the same bytes on and cannot change them unseen.
/// </summary>
public sealed class OverlayRecord
{
    /// <summary>Longest key in UTF-8 bytes.</summary>
    public const int MaxKeyLength = 256;

    /// <summary>Largest payload in bytes.</summary>
    public const int MaxPayloadLength = 64 * 1024;

    /// <summary>Largest signature in bytes.</summary>
    public const int MaxSignatureLength = 1024;

    /// <summary>Creates a record.</summary>
    public OverlayRecord(RecordKind kind, string key, ulong subject, RecordVersion version, long expiresAt, bool tombstone, ReadOnlyMemory<byte> payload, byte[]? signature = null)
    {
        Kind = kind;
        Key = key;
        Subject = subject;
        Version = version;
        ExpiresAt = expiresAt;
        Tombstone = tombstone;
        Payload = payload;
        Signature = signature ?? [];
    }

    /// <summary>The kind.</summary>
    public RecordKind Kind { get; }

    /// <summary>The key, unique within the kind.</summary>
    public string Key { get; }

    /// <summary>The node the record speaks for (for a route, the node it points to).</summary>
    public ulong Subject { get; }

    /// <summary>The version; <see cref="RecordVersion.Origin"/> is the signer.</summary>
    public RecordVersion Version { get; }

    /// <summary>The origin (signer) node id.</summary>
    public ulong Origin => Version.Origin;

    /// <summary>End of the lease or tombstone in microseconds of the overlay clock; 0 for never.</summary>
    public long ExpiresAt { get; }

    /// <summary>True for a deletion.</summary>
    public bool Tombstone { get; }

    /// <summary>The opaque content (empty for a tombstone).</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The origin's signature over <see cref="SignedBytes"/>.</summary>
    public byte[] Signature { get; }

    /// <summary>The store slot.</summary>
    public RecordSlot Slot => new(Kind, Key);

    /// <summary>The id (slot and version).</summary>
    public RecordId Id => new(Slot, Version);

    /// <summary>True once <paramref name="now"/> is past the expiry.</summary>
    public bool IsExpired(long now) => ExpiresAt != 0 && now >= ExpiresAt;

    /// <summary>The same record with <paramref name="signature"/>.</summary>
    public OverlayRecord WithSignature(byte[] signature) => new(Kind, Key, Subject, Version, ExpiresAt, Tombstone, Payload, signature);

    /// <summary>The bytes the signature covers: the record's wire form without the signature.</summary>
    public byte[] SignedBytes() => OverlayCodec.EncodeRecordBody(this);

    /// <inheritdoc />
    public override string ToString() => $"{Slot}#{Version}{(Tombstone ? " tombstone" : "")}";
}
