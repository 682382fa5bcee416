using System.Globalization;

namespace Beemesh.State.Eventual;

/// <summary>
/// A hybrid logical clock reading (Kulkarni et al., "Logical Physical Clocks", 2014) with the
/// replica that made it. <see cref="Ticks"/> packs the physical part, Unix milliseconds, into the
/// upper 48 bits and the logical counter into the lower 16, so one 64-bit comparison orders two
/// readings; the replica id breaks ties, which makes the order total across replicas.
/// </summary>
/// <param name="Ticks">Physical milliseconds &lt;&lt; 16 | logical counter.</param>
/// <param name="Replica">The replica that stamped the write.</param>
public readonly record struct HybridTimestamp(long Ticks, ulong Replica) : IComparable<HybridTimestamp>
{
    /// <summary>Bits of <see cref="Ticks"/> that hold the logical counter.</summary>
    public const int LogicalBits = 16;

    /// <summary>Unix milliseconds of the physical part.</summary>
    public long PhysicalMilliseconds => Ticks >> LogicalBits;

    /// <inheritdoc />
    public int CompareTo(HybridTimestamp other)
    {
        int byTicks = Ticks.CompareTo(other.Ticks);
        return byTicks != 0 ? byTicks : Replica.CompareTo(other.Replica);
    }

    /// <summary>Whether <paramref name="left"/> orders after <paramref name="right"/>.</summary>
    public static bool operator >(HybridTimestamp left, HybridTimestamp right) => left.CompareTo(right) > 0;

    /// <summary>Whether <paramref name="left"/> orders before <paramref name="right"/>.</summary>
    public static bool operator <(HybridTimestamp left, HybridTimestamp right) => left.CompareTo(right) < 0;

    /// <summary>Whether <paramref name="left"/> orders at or after <paramref name="right"/>.</summary>
    public static bool operator >=(HybridTimestamp left, HybridTimestamp right) => left.CompareTo(right) >= 0;

    /// <summary>Whether <paramref name="left"/> orders at or before <paramref name="right"/>.</summary>
    public static bool operator <=(HybridTimestamp left, HybridTimestamp right) => left.CompareTo(right) <= 0;

    /// <summary>The ETag clients see: both parts in hex, <c>TICKS-REPLICA</c>.</summary>
    public string ToETag() =>
        Ticks.ToString("x", CultureInfo.InvariantCulture) + "-" + Replica.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Parses <see cref="ToETag"/>'s form; false for anything else.</summary>
    public static bool TryParseETag(string? text, out HybridTimestamp stamp)
    {
        stamp = default;
        if (string.IsNullOrEmpty(text) || text.Length > 33)
        {
            return false;
        }

        int dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash <= 0 ||
            !long.TryParse(text.AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long ticks) ||
            !ulong.TryParse(text.AsSpan(dash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong replica) ||
            ticks < 0)
        {
            return false;
        }

        stamp = new HybridTimestamp(ticks, replica);
        return true;
    }
}
