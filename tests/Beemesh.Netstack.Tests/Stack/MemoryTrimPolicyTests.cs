using Beemesh.Netstack.Stack;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>When the stack gives memory back after a burst of flows (times are plain values).</summary>
public class MemoryTrimPolicyTests
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(10);

    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void AfterABurstEnds_ACheckIsArmed_AndTrimsWhenTheCountStayedDown()
    {
        var p = new MemoryTrimPolicy(1000, Settle, MinInterval);
        Assert.Null(p.Observe(10, S(0)));
        Assert.Null(p.Observe(60_000, S(5)));
        Assert.Null(p.Observe(31_000, S(8))); // not yet half
        Assert.Equal(S(9) + Settle, p.Observe(29_000, S(9)));
        Assert.Null(p.Observe(1_000, S(10))); // armed once
        Assert.True(p.ShouldTrim(1_000, S(11)));
        Assert.Equal(1_000, p.Peak);
        Assert.Null(p.Observe(1_000, S(12))); // nothing more to give back
    }

    [Fact]
    public void SmallChurn_NeverTrims()
    {
        var p = new MemoryTrimPolicy(1000, Settle, MinInterval);
        for (int i = 0; i < 100; i++)
        {
            Assert.Null(p.Observe(900, S(i)));
            Assert.Null(p.Observe(0, S(i + 0.5))); // every flow gone, but only 900 of them
        }
    }

    [Fact]
    public void ANewBurstBeforeTheCheck_CancelsTheTrim_AndTheNextFallArmsAgain()
    {
        var p = new MemoryTrimPolicy(1000, Settle, MinInterval);
        p.Observe(10_000, S(0));
        Assert.NotNull(p.Observe(100, S(1)));
        Assert.False(p.ShouldTrim(9_000, S(3))); // the burst came back: trimming now would be wasted
        Assert.Equal(10_000, p.Peak);
        Assert.Equal(S(4) + Settle, p.Observe(200, S(4)));
        Assert.True(p.ShouldTrim(200, S(6)));
    }

    [Fact]
    public void Trims_AreAtLeastTheMinimumIntervalApart()
    {
        var p = new MemoryTrimPolicy(1000, Settle, MinInterval);
        p.Observe(10_000, S(0));
        TimeSpan? at = p.Observe(0, S(1));
        Assert.True(p.ShouldTrim(0, at!.Value));
        TimeSpan first = at.Value;

        p.Observe(10_000, S(4));
        Assert.Equal(first + MinInterval, p.Observe(0, S(5)));
        Assert.True(p.ShouldTrim(0, first + MinInterval));
    }

    [Fact]
    public void RejectsANonPositiveThreshold() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryTrimPolicy(0, Settle, MinInterval));
}
