namespace Beemesh.Sidecar.State.Eventual;

/// <summary>How the replicas of an eventual store replicate (<see cref="EventualReplicator"/>).</summary>
public sealed class EventualReplicationOptions
{
    /// <summary>
    /// Time between anti-entropy rounds: each replica sends every peer its bucket digests and
    /// repairs whatever differs (a push that was lost to a partition, a restarted replica). Default 1 s.
    /// Must be shorter than the store's tombstone grace period.
    /// </summary>
    public TimeSpan AntiEntropyInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long local writes are gathered before they are pushed to the peers, in one batch.
    /// Default 5 ms. Writes never wait for the push.
    /// </summary>
    public TimeSpan PushDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Most entries (and most keys wanted, and most stamps of a summary) in one frame, sent or accepted. Default 4096.</summary>
    public int MaxEntriesPerFrame { get; init; } = 4096;

    /// <summary>About how many bytes of entries a replica puts in one frame (at least one entry, however large). Default 4 MiB.</summary>
    public long MaxBatchBytes { get; init; } = StateApiLimits.MaxRequestBytes;

    /// <summary>
    /// Largest frame accepted from a peer: one batch plus one more entry of the largest size a
    /// request allows, and framing. Default 9 MiB. A larger frame is refused and counted, and its
    /// connection closed.
    /// </summary>
    public int MaxFrameBytes { get; init; } = (2 * StateApiLimits.MaxRequestBytes) + (1024 * 1024);

    /// <summary>How long one exchange with a peer may take before the round moves on. Default 5 s.</summary>
    public TimeSpan ExchangeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often a replica's journal is flushed to the disk (<see cref="EventualJournal"/>): a write is
    /// in the journal before it is acknowledged and survives the process dying, but a power failure may
    /// lose the writes of the last interval. Zero flushes each write before it is acknowledged. Default 1 s.
    /// </summary>
    public TimeSpan JournalSyncInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Log size past which (and past the store's size) the journal is compacted into a snapshot. Default 16 MiB.</summary>
    public long JournalCompactBytes { get; init; } = 16L * 1024 * 1024;
}
