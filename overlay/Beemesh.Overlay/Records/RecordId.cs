namespace Beemesh.Overlay.Records;

/// <summary>One version of one record, as IHAVE, GRAFT and digests name it.</summary>
public readonly record struct RecordId(RecordSlot Slot, RecordVersion Version)
{
    /// <inheritdoc />
    public override string ToString() => $"{Slot}#{Version}";
}
