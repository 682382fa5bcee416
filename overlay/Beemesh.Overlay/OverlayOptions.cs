namespace Beemesh.Overlay;

/// <summary>
/// Tunables of one overlay node. Times are in microseconds. The defaults follow the HyParView and
/// Plumtree papers where they give a number and are chosen for links of 10-50 ms otherwise.
/// </summary>
public sealed record OverlayOptions
{
    /// <summary>Active view size: live links kept open (HyParView: log10(N)+1; 5 covers 10^4-10^5 nodes).</summary>
    public int ActiveViewSize { get; init; } = 5;

    /// <summary>Passive view size: candidates to refill the active view from (HyParView: 6 × active).</summary>
    public int PassiveViewSize { get; init; } = 30;

    /// <summary>Active random walk length: FORWARD_JOIN hops before the walk ends in an active view (HyParView ARWL, 6).</summary>
    public int ActiveRandomWalkLength { get; init; } = 6;

    /// <summary>Passive random walk length: the hop at which FORWARD_JOIN also lands in a passive view (HyParView PRWL, 3).</summary>
    public int PassiveRandomWalkLength { get; init; } = 3;

    /// <summary>Period of the passive-view SHUFFLE (10 s).</summary>
    public long ShuffleInterval { get; init; } = 10_000_000;

    /// <summary>Active-view entries sent in a SHUFFLE (HyParView ka, 3).</summary>
    public int ShuffleActiveCount { get; init; } = 3;

    /// <summary>Passive-view entries sent in a SHUFFLE (HyParView kp, 4).</summary>
    public int ShufflePassiveCount { get; init; } = 4;

    /// <summary>Hops a SHUFFLE walks before it is answered (4).</summary>
    public int ShuffleWalkLength { get; init; } = 4;

    /// <summary>
    /// Heartbeat period (1 s): each heartbeat sends a keepalive on every active link that carried
    /// nothing for a quarter of it (any message counts as one), so a live neighbour is never silent
    /// much over 1.25 s without loss, well under <see cref="SilenceThreshold"/>.
    /// </summary>
    public long KeepaliveInterval { get; init; } = 1_000_000;

    /// <summary>Silence after which an active neighbour is suspected and probed (3 s: three keepalives missed).</summary>
    public long SuspectTimeout { get; init; } = 3_000_000;

    /// <summary>
    /// Silence after which an active neighbour is taken for possibly gone (1.5 s: one keepalive and a
    /// half, so one late or lost keepalive is not enough): records are announced to it by IHAVE
    /// instead of pushed, and when all active neighbours but at most one are this silent the node
    /// opens <see cref="IsolationNeighbors"/> more links at once, before failure detection evicts anyone.
    /// </summary>
    public long SilenceThreshold { get; init; } = 1_500_000;

    /// <summary>
    /// NEIGHBOR requests sent at once to passive peers when the node is cut off (see
    /// <see cref="SilenceThreshold"/>) (2, so one dead candidate does not cost a whole timeout); the
    /// active view may exceed <see cref="ActiveViewSize"/> by this many until the silent neighbours are evicted.
    /// </summary>
    public int IsolationNeighbors { get; init; } = 2;

    /// <summary>
    /// While the node stays cut off, it asks <see cref="IsolationNeighbors"/> more passive peers this
    /// often (300 ms: a few round trips on 10-50 ms links) rather than wait <see cref="NeighborTimeout"/>
    /// on candidates that may be dead too; at most three rounds are outstanding.
    /// </summary>
    public long IsolationRetryInterval { get; init; } = 300_000;

    /// <summary>Time a suspected neighbour has to answer a direct or indirect probe before it is evicted (2 s: two probe rounds, one per keepalive).</summary>
    public long ProbeTimeout { get; init; } = 2_000_000;

    /// <summary>Other active neighbours asked to probe a suspected one (2, as SWIM's k).</summary>
    public int IndirectProbes { get; init; } = 2;

    /// <summary>
    /// Lifeguard local health: a heartbeat this late (200 ms) means the node itself is slow; the
    /// suspect and probe timeouts are multiplied by 1 + health, health capped at <see cref="MaxLocalHealth"/>.
    /// </summary>
    public long SlowTickThreshold { get; init; } = 200_000;

    /// <summary>Cap of the local health multiplier (8, as Lifeguard's).</summary>
    public int MaxLocalHealth { get; init; } = 8;

    /// <summary>Time to wait for a NEIGHBOR answer before the candidate is dropped from the passive view (1 s).</summary>
    public long NeighborTimeout { get; init; } = 1_000_000;

    /// <summary>Time to wait for a JOIN answer before the next contacts are tried (2 s).</summary>
    public long JoinTimeout { get; init; } = 2_000_000;

    /// <summary>
    /// Contacts a JOIN goes to at once when the previous one went unanswered (2, when that many are
    /// known), so that lost messages or dead contacts do not leave the node alone for several
    /// <see cref="JoinTimeout"/>s. The first JOIN goes to one contact: joining through two makes
    /// twice the FORWARD_JOIN walks and a less settled overlay (at 100,000 nodes without loss,
    /// 99.99% of nodes reached in 1.00 s instead of 0.87 s).
    /// </summary>
    public int JoinFanout { get; init; } = 2;

    /// <summary>Plumtree: IHAVE announcements are batched per link and flushed this often (25 ms).</summary>
    public long LazyFlushInterval { get; init; } = 25_000;

    /// <summary>
    /// Plumtree: time after a first IHAVE before a missing record is grafted (150 ms: about one
    /// tree hop more than an IHAVE's own delay on 10-50 ms links; shorter grafts more duplicates).
    /// </summary>
    public long GraftTimeout { get; init; } = 150_000;

    /// <summary>
    /// Plumtree: time after an IHAVE from a tree (eager) neighbour before the missing record is
    /// grafted from it (50 ms). Every record pushed on a tree link is announced on it as well, so
    /// such an IHAVE without the copy means the copy was lost on that link; the wait covers a copy
    /// that its IHAVE overtook (one-way delays differ by up to 40 ms on 10-50 ms links, and IHAVEs
    /// wait up to <see cref="LazyFlushInterval"/>). Grafting from the tree neighbour repairs along
    /// the tree, adding no link to it, so the next records bring no duplicates.
    /// </summary>
    public long TreeGraftTimeout { get; init; } = 50_000;

    /// <summary>Plumtree: time before the next announcer is grafted when the last did not deliver (150 ms, above a round trip).</summary>
    public long GraftRetryTimeout { get; init; } = 150_000;

    /// <summary>Period of the digest exchange with one random active neighbour (5 s), on top of the one on every new link.</summary>
    public long AntiEntropyInterval { get; init; } = 5_000_000;

    /// <summary>Lease of a leased record (90 s): it vanishes this long after its last renewal.</summary>
    public long LeaseDuration { get; init; } = 90_000_000;

    /// <summary>The origin renews its leased records this often (30 s).</summary>
    public long LeaseRenewInterval { get; init; } = 30_000_000;

    /// <summary>A tombstone is kept this long (180 s, longer than a lease, so no older copy can come back).</summary>
    public long TombstoneLifetime { get; init; } = 180_000_000;
}
