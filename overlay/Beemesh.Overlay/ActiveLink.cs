using Beemesh.Overlay.Records;

namespace Beemesh.Overlay;

/// <summary>State of one active-view link: liveness, suspicion and its Plumtree role.</summary>
internal sealed class ActiveLink(PeerAddress peer, long now)
{
    public PeerAddress Peer { get; } = peer;

    /// <summary>Plumtree: eager (tree) link when true, lazy (IHAVE only) when false.</summary>
    public bool Eager { get; set; } = true;

    public long LastHeard { get; set; } = now;

    public long LastSent { get; set; } = now;

    /// <summary>When a suspected peer is evicted unless a probe answers; 0 when not suspected.</summary>
    public long SuspectDeadline { get; set; }

    /// <summary>Record ids waiting for the next IHAVE flush on this link.</summary>
    public List<RecordId>? LazyQueue { get; set; }
}
