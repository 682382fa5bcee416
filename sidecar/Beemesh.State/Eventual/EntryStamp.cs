namespace Beemesh.State.Eventual;

/// <summary>What a replica tells a peer about one key in a differing bucket: the key and its write's stamp.</summary>
/// <param name="Key">The scoped key.</param>
/// <param name="Stamp">The stamp of the replica's current write (value or tombstone) to it.</param>
public readonly record struct EntryStamp(string Key, HybridTimestamp Stamp);
