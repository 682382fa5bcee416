using Beemesh.Agent.Tunnel;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests.Tunnel;

public sealed class HalfClosedBoundTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void A_flow_half_closed_past_the_bound_is_cut_once()
    {
        int cuts = 0;
        using var bound = new HalfClosedBound(Bound, _time, () => cuts++);
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, cuts); // nothing ended: an open flow is never cut

        bound.DirectionEnded();
        _time.Advance(Bound - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, cuts);
        Assert.False(bound.WasCut);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, cuts);
        Assert.True(bound.WasCut);

        // The other direction ends after the cut (its socket closed under it): nothing more.
        bound.DirectionEnded();
        _time.Advance(Bound * 3);
        Assert.Equal(1, cuts);
    }

    [Fact]
    public void A_flow_whose_other_direction_ends_in_time_is_not_cut()
    {
        int cuts = 0;
        using var bound = new HalfClosedBound(Bound, _time, () => cuts++);
        bound.DirectionEnded();
        _time.Advance(Bound - TimeSpan.FromSeconds(1));
        bound.DirectionEnded();
        _time.Advance(Bound * 3);
        Assert.Equal(0, cuts);
        Assert.False(bound.WasCut);
    }

    [Fact]
    public void A_flow_over_before_the_bound_is_not_cut()
    {
        int cuts = 0;
        var bound = new HalfClosedBound(Bound, _time, () => cuts++);
        bound.DirectionEnded();
        bound.Dispose();
        _time.Advance(Bound * 3);
        Assert.Equal(0, cuts);
    }

    [Fact]
    public void A_bound_must_be_positive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HalfClosedBound(TimeSpan.Zero, _time, () => { }));
        Assert.Throws<ArgumentNullException>(() => new HalfClosedBound(Bound, _time, null!));
    }
}
