namespace Beemesh.Overlay.Records;

/// <summary>A record's version: its HLC timestamp, ties broken by the origin node id. Higher wins.</summary>
public readonly record struct RecordVersion(HlcTimestamp Time, ulong Origin) : IComparable<RecordVersion>
{
    /// <inheritdoc />
    public int CompareTo(RecordVersion other)
    {
        int c = Time.CompareTo(other.Time);
        return c != 0 ? c : Origin.CompareTo(other.Origin);
    }

    /// <summary>Less than.</summary>
    public static bool operator <(RecordVersion a, RecordVersion b) => a.CompareTo(b) < 0;

    /// <summary>Greater than.</summary>
    public static bool operator >(RecordVersion a, RecordVersion b) => a.CompareTo(b) > 0;

    /// <summary>Less or equal.</summary>
    public static bool operator <=(RecordVersion a, RecordVersion b) => a.CompareTo(b) <= 0;

    /// <summary>Greater or equal.</summary>
    public static bool operator >=(RecordVersion a, RecordVersion b) => a.CompareTo(b) >= 0;

    /// <inheritdoc />
    public override string ToString() => $"{Time}@{Origin:x16}";
}
