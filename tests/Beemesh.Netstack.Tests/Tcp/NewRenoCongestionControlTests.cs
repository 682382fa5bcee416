using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Tests.Tcp;

public class NewRenoCongestionControlTests
{
    private const int Mss = 1000;
    private static readonly TimeSpan Now = TimeSpan.FromSeconds(5);

    private static NewRenoCongestionControl Started()
    {
        var cc = new NewRenoCongestionControl();
        cc.Initialize(Mss);
        return cc;
    }

    [Fact]
    public void Initialize_GivesTenSegments_AndNoThreshold()
    {
        var cc = Started();
        Assert.Equal(10 * Mss, cc.CongestionWindow);
        Assert.Equal(1 << 30, cc.SlowStartThreshold);
    }

    [Fact]
    public void SlowStart_CountsBytes_AtMostTwoSegmentsPerAck()
    {
        var cc = Started();
        cc.OnAck(500, TimeSpan.Zero, Now);
        Assert.Equal(10 * Mss + 500, cc.CongestionWindow);
        cc.OnAck(5 * Mss, TimeSpan.Zero, Now); // one stretch ACK grows the window by L = 2 SMSS only
        Assert.Equal(12 * Mss + 500, cc.CongestionWindow);
    }

    [Fact]
    public void CongestionAvoidance_AddsOneSegmentPerWindowAcknowledged()
    {
        var cc = Started();
        cc.OnFastRetransmit(20 * Mss, sack: true, Now);
        cc.OnRecoveryExit(20 * Mss);
        Assert.Equal(10 * Mss, cc.CongestionWindow);
        Assert.Equal(10 * Mss, cc.SlowStartThreshold);
        for (int i = 0; i < 9; i++)
        {
            cc.OnAck(Mss, TimeSpan.Zero, Now);
            Assert.Equal(10 * Mss, cc.CongestionWindow);
        }

        cc.OnAck(Mss, TimeSpan.Zero, Now);
        Assert.Equal(11 * Mss, cc.CongestionWindow);
    }

    [Fact]
    public void FastRetransmit_HalvesTheFlight_InflatesWithoutSack_DeflatesOnPartialAck()
    {
        var cc = Started();
        cc.OnFastRetransmit(16 * Mss, sack: false, Now);
        Assert.Equal(8 * Mss, cc.SlowStartThreshold);
        Assert.Equal(11 * Mss, cc.CongestionWindow); // ssthresh + 3 SMSS (RFC 6582 §3.2 step 2)
        cc.OnRecoveryDuplicateAck();
        Assert.Equal(12 * Mss, cc.CongestionWindow);
        cc.OnPartialAck(3 * Mss);
        Assert.Equal(10 * Mss, cc.CongestionWindow); // deflate by what was acked, add back one SMSS
        cc.OnRecoveryExit(3 * Mss);
        Assert.Equal(4 * Mss, cc.CongestionWindow); // min(ssthresh, max(flight, SMSS) + SMSS)
    }

    [Fact]
    public void Threshold_NeverBelowTwoSegments()
    {
        var cc = Started();
        cc.OnFastRetransmit(Mss, sack: true, Now);
        Assert.Equal(2 * Mss, cc.SlowStartThreshold);
    }

    [Fact]
    public void Timeout_OneSegment_ThresholdOnlyOnTheFirst()
    {
        var cc = Started();
        cc.OnRetransmissionTimeout(30 * Mss, firstTimeout: true, Now);
        Assert.Equal(Mss, cc.CongestionWindow);
        Assert.Equal(15 * Mss, cc.SlowStartThreshold);
        cc.OnRetransmissionTimeout(Mss, firstTimeout: false, Now);
        Assert.Equal(15 * Mss, cc.SlowStartThreshold); // a backed-off repeat keeps the first loss's threshold
        Assert.Equal(Mss, cc.CongestionWindow);
    }
}
