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
}
