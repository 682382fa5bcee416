namespace Beemesh.State.Eventual;

/// <summary>
/// The messages replicas of an eventual store exchange (<see cref="EventualWire"/>). Append-only:
/// a value, once used, keeps its meaning.
/// </summary>
public enum EventualFrameKind : byte
{
    /// <summary>Request: the sender's per-bucket digests. Answer: <see cref="Summary"/>.</summary>
    Digest = 1,

    /// <summary>Answer to <see cref="Digest"/>: the differing buckets and the (key, stamp) pairs in them.</summary>
    Summary = 2,

    /// <summary>
    /// Request: entries for the receiver to merge and keys the sender wants. Answer: an
    /// <see cref="Entries"/> frame with the wanted entries and no wants (empty for a push).
    /// </summary>
    Entries = 3,
}
