namespace Beemesh.Sidecar.Telemetry;

/// <summary>
/// Replication counters of a sidecar's eventual stores (all stores of the workload summed):
/// entries pushed to and received from peers, entries that changed the local replica, anti-entropy
/// digest exchanges and refused frames. Thread-safe; counters only grow.
/// </summary>
public sealed class EventualStateCounters
{
    private long _pushed;
    private long _received;
    private long _merged;
    private long _digestRounds;
    private long _refusedFrames;
    private long _failedExchanges;
    private long _journalDroppedRecords;
    private long _journalDroppedBytes;
    private long _journalSyncs;
    private long _journalCompactions;
    private long _journalFailures;

    /// <summary>Entries sent to peers, by push on write and by anti-entropy repair.</summary>
    public long EntriesPushed => Interlocked.Read(ref _pushed);

    /// <summary>Entries received from peers.</summary>
    public long EntriesReceived => Interlocked.Read(ref _received);

    /// <summary>Received entries that won over the local replica's write (the rest it already had, or had newer).</summary>
    public long EntriesMerged => Interlocked.Read(ref _merged);

    /// <summary>Digests sent to a peer (one per peer per anti-entropy round).</summary>
    public long DigestRounds => Interlocked.Read(ref _digestRounds);

    /// <summary>Frames refused: too large, cut short, malformed or of an unknown kind (each closed its connection).</summary>
    public long RefusedFrames => Interlocked.Read(ref _refusedFrames);

    /// <summary>Exchanges with a peer that failed (unreachable, hung up, timed out).</summary>
    public long FailedExchanges => Interlocked.Read(ref _failedExchanges);

    /// <summary>Counts entries sent.</summary>
    public void CountPushed(int entries) => Interlocked.Add(ref _pushed, entries);

    /// <summary>Counts entries received and how many of them changed the replica.</summary>
    public void CountReceived(int entries, int merged)
    {
        Interlocked.Add(ref _received, entries);
        Interlocked.Add(ref _merged, merged);
    }

    /// <summary>Counts a digest sent.</summary>
    public void CountDigestRound() => Interlocked.Increment(ref _digestRounds);

    /// <summary>Counts a refused frame.</summary>
    public void CountRefusedFrame() => Interlocked.Increment(ref _refusedFrames);

    /// <summary>Counts a failed exchange.</summary>
    public void CountFailedExchange() => Interlocked.Increment(ref _failedExchanges);

    /// <summary>Journal records (or whole files) dropped at load: cut short, failing their checksum, or undecodable.</summary>
    public long JournalDroppedRecords => Interlocked.Read(ref _journalDroppedRecords);

    /// <summary>Bytes of journal files dropped at load with those records.</summary>
    public long JournalDroppedBytes => Interlocked.Read(ref _journalDroppedBytes);

    /// <summary>Times a journal was flushed to the disk (fsync).</summary>
    public long JournalSyncs => Interlocked.Read(ref _journalSyncs);

    /// <summary>Journals compacted into a snapshot.</summary>
    public long JournalCompactions => Interlocked.Read(ref _journalCompactions);

    /// <summary>Journal writes, syncs or compactions that failed (the disk full or failing).</summary>
    public long JournalFailures => Interlocked.Read(ref _journalFailures);

    /// <summary>Counts records and bytes dropped from a journal at load.</summary>
    public void CountJournalDropped(long records, long bytes)
    {
        Interlocked.Add(ref _journalDroppedRecords, records);
        Interlocked.Add(ref _journalDroppedBytes, bytes);
    }

    /// <summary>Counts an fsync of a journal.</summary>
    public void CountJournalSync() => Interlocked.Increment(ref _journalSyncs);

    /// <summary>Counts a compaction.</summary>
    public void CountJournalCompaction() => Interlocked.Increment(ref _journalCompactions);

    /// <summary>Counts a journal failure.</summary>
    public void CountJournalFailure() => Interlocked.Increment(ref _journalFailures);
}
