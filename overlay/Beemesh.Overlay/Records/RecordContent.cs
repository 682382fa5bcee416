namespace Beemesh.Overlay.Records;

/// <summary>What a node publishes: the overlay adds version, expiry and signature.</summary>
/// <param name="Kind">The record kind.</param>
/// <param name="Key">The record key, unique within its kind (at most <see cref="OverlayRecord.MaxKeyLength"/> UTF-8 bytes).</param>
/// <param name="Payload">Opaque content (at most <see cref="OverlayRecord.MaxPayloadLength"/> bytes).</param>
/// <param name="Leased">True for a lease the origin renews and that vanishes when it stops (routes).</param>
/// <param name="Subject">The node the record speaks for; null for the publisher itself. A route is valid only when this is its signer.</param>
public sealed record RecordContent(RecordKind Kind, string Key, ReadOnlyMemory<byte> Payload, bool Leased = false, ulong? Subject = null);
