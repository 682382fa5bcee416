using Beemesh.Overlay.Records;

namespace Beemesh.Overlay;

/// <summary>
/// What a node reports to its host for metrics and logs (records accepted and refused by reason,
/// duplicates, view changes, suspicions). Every method has an empty default.
/// </summary>
public interface IOverlayObserver
{
    /// <summary>A record was stored (published here or received and accepted).</summary>
    void RecordAccepted(OverlayNode node, OverlayRecord record, long now) { }

    /// <summary>A received record was refused.</summary>
    void RecordRefused(OverlayNode node, PeerAddress from, OverlayRecord record, RecordRefusal reason, long now) { }

    /// <summary>A copy of a record already held arrived (a broadcast duplicate).</summary>
    void Duplicate(OverlayNode node, PeerAddress from, OverlayRecord record, long now) { }

    /// <summary>A peer entered (<paramref name="added"/>) or left the active view.</summary>
    void ActiveViewChanged(OverlayNode node, PeerAddress peer, bool added, long now) { }

    /// <summary>An active neighbour fell silent and is being probed.</summary>
    void PeerSuspected(OverlayNode node, PeerAddress peer, long now) { }

    /// <summary>A suspected neighbour did not answer its probes and was evicted.</summary>
    void PeerEvicted(OverlayNode node, PeerAddress peer, long now) { }
}
