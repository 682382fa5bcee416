namespace Beemesh.Overlay.Records;

/// <summary>
/// A hybrid logical clock timestamp (Kulkarni et al. 2014): the largest physical time seen, in
/// microseconds, and a counter that orders events within it.
/// </summary>
public readonly record struct HlcTimestamp(long Physical, int Logical) : IComparable<HlcTimestamp>
{
    /// <inheritdoc />
    public int CompareTo(HlcTimestamp other) => Physical != other.Physical ? Physical.CompareTo(other.Physical) : Logical.CompareTo(other.Logical);

    /// <summary>Less than.</summary>
    public static bool operator <(HlcTimestamp a, HlcTimestamp b) => a.CompareTo(b) < 0;

    /// <summary>Greater than.</summary>
    public static bool operator >(HlcTimestamp a, HlcTimestamp b) => a.CompareTo(b) > 0;

    /// <summary>Less or equal.</summary>
    public static bool operator <=(HlcTimestamp a, HlcTimestamp b) => a.CompareTo(b) <= 0;

    /// <summary>Greater or equal.</summary>
    public static bool operator >=(HlcTimestamp a, HlcTimestamp b) => a.CompareTo(b) >= 0;

    /// <inheritdoc />
    public override string ToString() => $"{Physical}.{Logical}";
}
