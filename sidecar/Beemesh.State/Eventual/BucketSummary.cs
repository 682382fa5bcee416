namespace Beemesh.State.Eventual;

/// <summary>
/// A replica's answer to a peer's digest: the buckets whose digests differ (whole buckets, as many
/// as fit the limit) and the (key, stamp) of every entry it holds in them.
/// </summary>
/// <param name="Buckets">The differing buckets covered, in the order they were taken.</param>
/// <param name="Stamps">The replica's entries in those buckets (without entries dead past the grace period).</param>
public sealed record BucketSummary(IReadOnlyList<int> Buckets, IReadOnlyList<EntryStamp> Stamps);
