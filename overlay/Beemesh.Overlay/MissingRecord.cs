using Beemesh.Overlay.Records;

namespace Beemesh.Overlay;

/// <summary>Plumtree: a record announced by IHAVE but not received yet, with who announced it.</summary>
internal sealed class MissingRecord(RecordId id, PeerAddress firstAnnouncer, long deadline)
{
    public RecordId Id { get; } = id;

    public List<PeerAddress> Announcers { get; } = [firstAnnouncer];

    /// <summary>Index in <see cref="Announcers"/> of the next one to graft; the list is cycled.</summary>
    public int Next { get; set; }

    /// <summary>GRAFTs sent so far.</summary>
    public int Grafts { get; set; }

    /// <summary>When to graft the next announcer.</summary>
    public long Deadline { get; set; } = deadline;
}
