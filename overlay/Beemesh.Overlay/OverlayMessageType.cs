namespace Beemesh.Overlay;

/// <summary>Overlay message types; the value is the type byte on the wire. Append-only: a value once used is never reused or renumbered.</summary>
public enum OverlayMessageType : byte
{
    /// <summary>First frame on a link: node id and protocol version.</summary>
    Hello = 1,
    /// <summary>HyParView JOIN: the sender asks to enter the overlay.</summary>
    Join = 2,
    /// <summary>Answer to JOIN: the contact took the sender into its active view; carries a passive sample.</summary>
    JoinReply = 3,
    /// <summary>HyParView FORWARD_JOIN random walk of a new node.</summary>
    ForwardJoin = 4,
    /// <summary>HyParView NEIGHBOR request (high or low priority).</summary>
    Neighbor = 5,
    /// <summary>Answer to NEIGHBOR: accepted or rejected.</summary>
    NeighborReply = 6,
    /// <summary>HyParView DISCONNECT: the link leaves the active view.</summary>
    Disconnect = 7,
    /// <summary>HyParView SHUFFLE random walk with a sample of views.</summary>
    Shuffle = 8,
    /// <summary>Answer to SHUFFLE with a passive sample.</summary>
    ShuffleReply = 9,
    /// <summary>Keepalive on an idle active link.</summary>
    Ping = 10,
    /// <summary>Ask a neighbour to probe a suspected peer.</summary>
    ProbeRequest = 11,
    /// <summary>Probe of a suspected peer, direct or on behalf of a requester.</summary>
    Probe = 12,
    /// <summary>The probed peer is alive (to the prober).</summary>
    ProbeAck = 13,
    /// <summary>An indirect probe succeeded (helper to requester).</summary>
    ProbeResult = 14,
    /// <summary>Plumtree GOSSIP: a record's payload, eager push or repair.</summary>
    Gossip = 15,
    /// <summary>Plumtree IHAVE: batched record ids on lazy links.</summary>
    IHave = 16,
    /// <summary>Plumtree GRAFT: send me these records and make the link eager.</summary>
    Graft = 17,
    /// <summary>Plumtree PRUNE: make the link lazy.</summary>
    Prune = 18,
    /// <summary>Anti-entropy digest: every record version held.</summary>
    Digest = 19,
    /// <summary>Anti-entropy pull: send these records without touching the tree.</summary>
    Want = 20,
}
