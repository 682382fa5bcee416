using Beemesh.LoadTests.Scenarios;
using FsCheck.Xunit;

namespace Beemesh.LoadTests.Tests.Scenarios;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void EmptyHistogramReportsZeros()
    {
        var h = new LatencyHistogram();
        Assert.Equal(0, h.Count);
        Assert.Equal(0, h.ValueAtPercentile(50));
        Assert.Equal(0, h.Min);
        Assert.Equal(0, h.Max);
        Assert.Equal(0, h.Mean);
    }

    [Fact]
    public void SmallValuesAreExactWithNearestRank()
    {
        var h = new LatencyHistogram();
        for (int v = 1; v <= 100; v++)
        {
            h.Record(v);
        }

        Assert.Equal(50, h.ValueAtPercentile(50));
        Assert.Equal(75, h.ValueAtPercentile(75));
        Assert.Equal(95, h.ValueAtPercentile(95));
        Assert.Equal(99, h.ValueAtPercentile(99));
        Assert.Equal(100, h.ValueAtPercentile(99.9));
        Assert.Equal(1, h.ValueAtPercentile(0));
        Assert.Equal(100, h.ValueAtPercentile(100));
        Assert.Equal(50.5, h.Mean, 10);
    }

    [Fact]
    public void LargeValuesStayWithinRelativeError()
    {
        var h = new LatencyHistogram();
        for (long v = 1; v <= 1_000_000; v++)
        {
            h.Record(v * 1000);
        }

        AssertClose(500_000_000, h.ValueAtPercentile(50));
        AssertClose(990_000_000, h.ValueAtPercentile(99));
        AssertClose(999_000_000, h.ValueAtPercentile(99.9));
        Assert.Equal(1000, h.Min);
        Assert.Equal(1_000_000_000, h.Max);
    }

    [Fact]
    public void MemoryIsBoundedWhateverIsRecorded()
    {
        var h = new LatencyHistogram();
        int slots = h.SlotCount;
        h.Record(long.MaxValue);
        h.Record(-5);
        Assert.Equal(slots, h.SlotCount);
        Assert.True(slots < 20_000, $"{slots} slots");
        Assert.Equal(long.MaxValue, h.Max);
        Assert.Equal(0, h.Min);
        Assert.Equal(h.Max, h.ValueAtPercentile(100));
    }

    [Fact]
    public void AddMergesCountsAndExtremes()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        a.Record(10);
        b.Record(30);
        b.Record(20);
        a.Add(b);
        Assert.Equal(3, a.Count);
        Assert.Equal(10, a.Min);
        Assert.Equal(30, a.Max);
        Assert.Equal(20, a.ValueAtPercentile(50));
        Assert.Equal(20.0, a.Mean, 10);
    }

    [Property(MaxTest = 200)]
    public bool PercentileIsWithinErrorOfSortedNearestRank(long[] raw, byte percentileByte)
    {
        if (raw.Length == 0)
        {
            return true;
        }

        double percentile = percentileByte / 255.0 * 100.0;
        var h = new LatencyHistogram();
        long[] values = new long[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            values[i] = Math.Abs(raw[i] % 100_000_000_000L);
            h.Record(values[i]);
        }

        Array.Sort(values);
        long rank = Math.Clamp((long)Math.Ceiling(percentile / 100.0 * values.Length), 1, values.Length);
        long expected = values[rank - 1];
        long actual = h.ValueAtPercentile(percentile);

        // Reported value is the slot's upper bound clamped to the exact max, never below the truth.
        return actual >= expected && actual <= Math.Max(expected, (long)(expected * (1 + (1.0 / 512))) + 1);
    }

    private static void AssertClose(long expected, long actual)
    {
        double error = Math.Abs(actual - expected) / (double)expected;
        Assert.True(error <= 1.0 / 512, $"expected ~{expected}, got {actual} (error {error:P3})");
    }
}
