namespace Beemesh.Overlay.Records;

/// <summary>Where a record lives in the store: its kind and key. A newer version replaces the old one in its slot.</summary>
public readonly record struct RecordSlot(RecordKind Kind, string Key)
{
    /// <inheritdoc />
    public override string ToString() => $"{Kind}/{Key}";
}
