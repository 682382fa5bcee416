namespace Beemesh.LoadTests.Scenarios;

/// <summary>
/// A log-linear latency histogram in the style of HdrHistogram: fixed memory, constant-time
/// recording, and a bounded relative error on every reported percentile.
/// </summary>
/// <remarks>
/// Values below 2^<c>precisionBits</c> are counted exactly, one slot each. Above that, each
/// power-of-two range [2^m, 2^(m+1)) is cut into 2^(precisionBits-1) equal slots, so a value
/// is reported at most 2^-(precisionBits-1) too high (0.2 % with the default 10 bits).
/// Values above <see cref="HighestTrackableValue"/> are counted in the last slot; the exact
/// minimum, maximum and sum are kept separately, so min, max and mean are exact.
/// Not thread-safe: callers serialize access or keep one histogram per worker and
/// <see cref="Add"/> them.
/// </remarks>
public sealed class LatencyHistogram
{
    private readonly int _precisionBits;
    private readonly long _exactLimit;
    private readonly long[] _counts;

    /// <summary>Creates an empty histogram.</summary>
    /// <param name="highestTrackableValue">Largest value tracked with full precision (default 2^36, about 68 s in nanoseconds).</param>
    /// <param name="precisionBits">Bits of precision per power of two, 2..20 (default 10: 0.2 % error).</param>
    public LatencyHistogram(long highestTrackableValue = 1L << 36, int precisionBits = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(precisionBits, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(precisionBits, 20);
        _precisionBits = precisionBits;
        _exactLimit = 1L << precisionBits;
        ArgumentOutOfRangeException.ThrowIfLessThan(highestTrackableValue, _exactLimit);
        HighestTrackableValue = highestTrackableValue;
        _counts = new long[IndexOf(highestTrackableValue) + 1];
    }

    /// <summary>Largest value recorded with full precision; larger values land in the last slot.</summary>
    public long HighestTrackableValue { get; }

    /// <summary>Number of recorded values.</summary>
    public long Count { get; private set; }

    /// <summary>Smallest recorded value (exact), or 0 when empty.</summary>
    public long Min => Count == 0 ? 0 : _min;

    /// <summary>Largest recorded value (exact), or 0 when empty.</summary>
    public long Max => Count == 0 ? 0 : _max;

    /// <summary>Arithmetic mean of the recorded values (exact up to double rounding), or 0 when empty.</summary>
    public double Mean => Count == 0 ? 0 : (double)_sum / Count;

    /// <summary>Number of slots, i.e. the memory footprint in longs.</summary>
    public int SlotCount => _counts.Length;

    private long _min = long.MaxValue;
    private long _max;
    private Int128 _sum;

    /// <summary>Records one value; negative values are recorded as 0.</summary>
    public void Record(long value)
    {
        if (value < 0)
        {
            value = 0;
        }

        _counts[IndexOf(Math.Min(value, HighestTrackableValue))]++;
        Count++;
        _sum += value;
        if (value < _min)
        {
            _min = value;
        }

        if (value > _max)
        {
            _max = value;
        }
    }

    /// <summary>Adds every value recorded in <paramref name="other"/>, which must have the same shape.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other._counts.Length != _counts.Length || other._precisionBits != _precisionBits)
        {
            throw new ArgumentException("Histograms differ in shape.", nameof(other));
        }

        if (other.Count == 0)
        {
            return;
        }

        for (int i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        _sum += other._sum;
        _min = Math.Min(_min, other._min);
        _max = Math.Max(_max, other._max);
    }

    /// <summary>
    /// The value at <paramref name="percentile"/> (0..100): the smallest slot bound such that at
    /// least that share of the values are at or below it, clamped to the exact min and max.
    /// Returns 0 when empty.
    /// </summary>
    public long ValueAtPercentile(double percentile)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(percentile, 0.0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percentile, 100.0);
        if (Count == 0)
        {
            return 0;
        }

        // Nearest-rank definition: the k-th smallest value where k = ceil(p/100 * n), k >= 1.
        long rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                // The last slot also holds every value above the trackable range.
                if (i == _counts.Length - 1)
                {
                    return _max;
                }

                return Math.Clamp(HighestValueOfSlot(i), _min, _max);
            }
        }

        return _max;
    }

    /// <summary>Slot index of a value in [0, HighestTrackableValue].</summary>
    private int IndexOf(long value)
    {
        if (value < _exactLimit)
        {
            return (int)value;
        }

        int magnitude = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)value);
        int shift = magnitude - (_precisionBits - 1);
        long half = _exactLimit >> 1;
        long top = value >> shift; // in [half, 2 * half)
        return (int)(_exactLimit + ((shift - 1) * half) + (top - half));
    }

    /// <summary>Largest value that maps to slot <paramref name="index"/>.</summary>
    private long HighestValueOfSlot(int index)
    {
        if (index < _exactLimit)
        {
            return index;
        }

        long half = _exactLimit >> 1;
        long offset = index - _exactLimit;
        int shift = (int)(offset / half) + 1;
        long top = half + (offset % half);
        return ((top + 1) << shift) - 1;
    }
}
