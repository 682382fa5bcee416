using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Tcp;

/// <summary>HyStart++ (RFC 9406) on its own, inside CUBIC's slow start, and in a connection.</summary>
public class HyStartPlusPlusTests
{
    private const int Mss = 1000;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// An ACK clock around one controller, one segment per ACK, the window refilled after every
    /// ACK. Its rounds are RFC 9406's: a round begins with the ACK that covers the previous
    /// round's end and lasts until the data in flight at that ACK is acknowledged.
    /// </summary>
    private sealed class Sender
    {
        private uint _una = 5000;
        private uint _max = 5000;
        private uint _roundEnd;
        private bool _started;

        public Sender(CubicCongestionControl cc)
        {
            Cc = cc;
            Cc.Initialize(Mss);
            Fill();
        }

        public CubicCongestionControl Cc { get; }
        public TimeSpan Now { get; private set; } = TimeSpan.FromSeconds(1);
        public HyStartPlusPlus H => Cc.HyStartState!;
        public uint FlightSize => _max - _una;

        /// <summary>One round with the given RTT on every ACK; the first <paramref name="sampled"/> ACKs carry a sample, the rest none. Returns the ACKs in it.</summary>
        public int Round(TimeSpan rtt, int sampled = int.MaxValue)
        {
            int acks = 0;
            do
            {
                _una += Mss;
                if (!_started || TcpSeq.Ge(_una, _roundEnd))
                {
                    _started = true;
                    _roundEnd = _max;
                }

                Cc.OnAckSample(_una, _max, acks++ < sampled ? rtt : null);
                Cc.OnAck(Mss, rtt, Now);
                Fill();
            }
            while (TcpSeq.Lt(_una + Mss, _roundEnd));

            Now += rtt;
            return acks;
        }

        /// <summary>After a timeout: what was in flight is given up and sending restarts from SND.UNA.</summary>
        public void Restart()
        {
            _max = _una;
            _started = false;
            Fill();
        }

        private void Fill()
        {
            uint limit = _una + (uint)(Cc.CongestionWindow / Mss * Mss);
            if (TcpSeq.Gt(limit, _max))
            {
                _max = limit;
            }
        }
    }

    private static Sender NewSender(bool hyStart = true) => new(new CubicCongestionControl { HyStart = hyStart });

    private static readonly int InitialSsthresh = new CubicCongestionControl().SlowStartThreshold;

    [Fact]
    public void SteadyRtt_StaysInSlowStart_OneSegmentPerAck()
    {
        var s = NewSender();
        for (int r = 0; r < 6; r++)
        {
            int w = s.Cc.CongestionWindow;
            int acks = s.Round(10 * Ms);
            Assert.Equal(w + acks * Mss, s.Cc.CongestionWindow);
            Assert.InRange(acks, w / Mss - 2, w / Mss);
            Assert.Equal(HyStartPhase.SlowStart, s.H.Phase);
        }

        Assert.Equal(10 * Ms, s.H.LastRoundMinRtt);
        Assert.Equal(0, s.H.CssEntries);
        Assert.Equal(InitialSsthresh, s.Cc.SlowStartThreshold);
    }

    [Fact]
    public void RttRise_AtTheThreshold_EntersCss_WhichGrowsAQuarterAsFast()
    {
        var s = NewSender();
        s.Round(10 * Ms);
        s.Round(10 * Ms);

        // RttThresh = max(4 ms, min(10 ms / 8, 16 ms)) = 4 ms: 14 ms is a rise.
        int w = s.Cc.CongestionWindow;
        int acks = s.Round(14 * Ms);
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);
        Assert.Equal(14 * Ms, s.H.CssBaselineMinRtt);
        Assert.Equal(1, s.H.CssEntries);

        // Seven ACKs grew by slow start; the eighth decided, so it and the rest grew by a quarter.
        Assert.Equal(w + 7 * Mss + (acks - 7) * Mss / 4, s.Cc.CongestionWindow);
        w = s.Cc.CongestionWindow;
        acks = s.Round(14 * Ms);
        Assert.Equal(w + acks * Mss / 4, s.Cc.CongestionWindow);
        Assert.Equal(InitialSsthresh, s.Cc.SlowStartThreshold); // still slow start: no ssthresh yet
    }

    [Fact]
    public void RttRise_BelowTheThreshold_IsNotACongestionSignal()
    {
        var s = NewSender();
        s.Round(10 * Ms);
        s.Round(13 * Ms); // 3 ms < 4 ms
        s.Round(16 * Ms); // 3 ms again over the last round
        Assert.Equal(HyStartPhase.SlowStart, s.H.Phase);
        Assert.Equal(0, s.H.CssEntries);
    }

    [Theory]
    [InlineData(80, 89, 90)]    // 80 ms / 8 = 10 ms
    [InlineData(200, 215, 216)] // 200 ms / 8 = 25 ms, clamped to MAX_RTT_THRESH = 16 ms
    [InlineData(1, 4, 5)]       // 1 ms / 8, raised to MIN_RTT_THRESH = 4 ms
    public void RttThreshold_IsAnEighthOfTheLastRoundsMinimum_ClampedTo4And16Ms(int lastMs, int notEnoughMs, int enoughMs)
    {
        var below = NewSender();
        below.Round(lastMs * Ms);
        below.Round(notEnoughMs * Ms);
        Assert.Equal(HyStartPhase.SlowStart, below.H.Phase);

        var at = NewSender();
        at.Round(lastMs * Ms);
        at.Round(enoughMs * Ms);
        Assert.Equal(HyStartPhase.ConservativeSlowStart, at.H.Phase);
    }

    [Fact]
    public void RoundsWithFewerThanEightSamples_DecideNothing()
    {
        var s = NewSender();
        s.Round(10 * Ms, sampled: HyStartPlusPlus.RttSampleCount - 1);
        s.Round(50 * Ms, sampled: HyStartPlusPlus.RttSampleCount - 1);
        s.Round(90 * Ms, sampled: HyStartPlusPlus.RttSampleCount - 1);
        Assert.Equal(HyStartPhase.SlowStart, s.H.Phase);

        s.Round(200 * Ms, sampled: HyStartPlusPlus.RttSampleCount);
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);
    }

    [Fact]
    public void RttFallingBelowTheCssBaseline_ResumesSlowStart_WithHyStartStillWatching()
    {
        var s = NewSender();
        s.Round(10 * Ms);
        s.Round(20 * Ms);
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);
        s.Round(20 * Ms);
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);

        s.Round(19 * Ms); // below the 20 ms baseline: the rise was jitter
        Assert.Equal(HyStartPhase.SlowStart, s.H.Phase);
        Assert.Equal(1, s.H.SlowStartResumptions);
        Assert.Equal(TimeSpan.MaxValue, s.H.CssBaselineMinRtt);
        int w = s.Cc.CongestionWindow;
        int acks = s.Round(19 * Ms);
        Assert.Equal(w + acks * Mss, s.Cc.CongestionWindow); // a segment per ACK again

        s.Round(30 * Ms); // and a new rise enters CSS again
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);
        Assert.Equal(2, s.H.CssEntries);
        Assert.Equal(InitialSsthresh, s.Cc.SlowStartThreshold);
    }

    [Fact]
    public void FiveRoundsOfCss_EndSlowStart_WithSsthreshAtTheWindow_ThenCubicTakesOver()
    {
        var s = NewSender();
        s.Round(10 * Ms);
        s.Round(20 * Ms); // CSS from the 8th ACK of this round: the first of CSS_ROUNDS
        for (int r = 1; r < HyStartPlusPlus.CssRounds; r++)
        {
            Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);
            Assert.Equal(r - 1, s.H.CssRoundsCompleted);
            s.Round(20 * Ms);
        }

        // The fifth round ends with the ACK that begins the next one: it sets ssthresh = cwnd.
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);
        Assert.Equal(HyStartPlusPlus.CssRounds - 1, s.H.CssRoundsCompleted);
        int w = s.Cc.CongestionWindow;
        int acks = s.Round(20 * Ms);
        Assert.Equal(HyStartPhase.Done, s.H.Phase);
        int ssthresh = s.Cc.SlowStartThreshold;
        Assert.Equal(w + Mss / 4, ssthresh); // the window after that ACK's CSS growth
        Assert.InRange(s.Cc.CongestionWindow - ssthresh, 0, acks * Mss / 8); // congestion avoidance: well under CSS's quarter per ACK
        Assert.True(s.Cc.MaxWindowBeforeReduction > 0); // CUBIC's epoch started at the handover
        Assert.Equal(0, s.Cc.TimeToMaxWindow);
    }

    [Fact]
    public void LossInCss_EndsHyStart_AndLaterSlowStartsAreReno()
    {
        var s = NewSender();
        s.Round(10 * Ms);
        s.Round(20 * Ms);
        Assert.Equal(HyStartPhase.ConservativeSlowStart, s.H.Phase);

        long flight = s.FlightSize;
        s.Cc.OnFastRetransmit(flight, sack: true, s.Now);
        Assert.Equal(HyStartPhase.Done, s.H.Phase);
        Assert.Equal((int)(flight * CubicCongestionControl.Beta), s.Cc.SlowStartThreshold);

        // After a timeout the window restarts at one segment; slow start up to ssthresh ignores RTT rises.
        s.Cc.OnRetransmissionTimeout(flight, firstTimeout: true, s.Now);
        Assert.Equal(Mss, s.Cc.CongestionWindow);
        s.Restart();
        s.Round(10 * Ms);
        s.Round(40 * Ms);
        int w = s.Cc.CongestionWindow;
        int acks = s.Round(80 * Ms);
        Assert.Equal(HyStartPhase.Done, s.H.Phase);
        Assert.Equal(w + acks * Mss, s.Cc.CongestionWindow);
        Assert.True(s.Cc.CongestionWindow < s.Cc.SlowStartThreshold);
    }

    [Fact]
    public void TimeoutInSlowStart_EndsHyStart()
    {
        var s = NewSender();
        s.Round(10 * Ms);
        s.Cc.OnRetransmissionTimeout(s.FlightSize, firstTimeout: true, s.Now);
        Assert.Equal(HyStartPhase.Done, s.H.Phase);
    }

    [Fact]
    public void Off_RisingRttChangesNothing()
    {
        var on = NewSender();
        var off = NewSender(hyStart: false);
        Assert.Null(off.Cc.HyStartState);
        foreach (int ms in new[] { 10, 30, 60, 90, 120, 150 })
        {
            on.Round(ms * Ms);
            off.Round(ms * Ms);
        }

        Assert.Equal(InitialSsthresh, off.Cc.SlowStartThreshold);
        Assert.True(on.Cc.CongestionWindow < off.Cc.CongestionWindow / 2, $"{on.Cc.CongestionWindow} vs {off.Cc.CongestionWindow}");
    }

    [Fact]
    public void GrowthPerAck_IsCappedAtEightSegmentsUnpaced_AndAQuarterInCss()
    {
        var h = new HyStartPlusPlus();
        Assert.Equal(8 * Mss, h.Increase(20 * Mss, Mss));
        Assert.Equal(3 * Mss, h.Increase(3 * Mss, Mss));
        Assert.Equal(20 * Mss, new HyStartPlusPlus { Paced = true }.Increase(20 * Mss, Mss));

        // Reno's slow start (HyStart++ off) keeps RFC 3465's L = 2 SMSS.
        var reno = new CubicCongestionControl { HyStart = false };
        reno.Initialize(Mss);
        reno.OnAck(20 * Mss, TimeSpan.Zero, TimeSpan.Zero);
        Assert.Equal(12 * Mss, reno.CongestionWindow);
        var hy = new CubicCongestionControl();
        hy.Initialize(Mss);
        hy.OnAck(20 * Mss, TimeSpan.Zero, TimeSpan.Zero);
        Assert.Equal(18 * Mss, hy.CongestionWindow);

        for (uint i = 1; i <= 8; i++)
        {
            h.OnAck(i * Mss, 100 * Mss, 10 * Ms);
        }

        for (uint i = 0; i < 8; i++)
        {
            h.OnAck(101 * Mss + i * Mss, 200 * Mss, 20 * Ms);
        }

        Assert.Equal(HyStartPhase.ConservativeSlowStart, h.Phase);
        Assert.Equal(2.0 * Mss, h.Increase(8 * Mss, Mss));
        Assert.Equal(2.0 * Mss, h.Increase(20 * Mss, Mss));
    }

    [Fact]
    public void RoundsEndWhenTheAckCoversWindowEnd_NotBefore()
    {
        var h = new HyStartPlusPlus();
        h.OnAck(1000, 10_000, 10 * Ms); // round 1: windowEnd = 10,000
        for (uint a = 2000; a < 10_000; a += 1000)
        {
            h.OnAck(a, 20_000, 10 * Ms);
        }

        Assert.Equal(TimeSpan.MaxValue, h.LastRoundMinRtt);
        h.OnAck(10_000, 20_000, 50 * Ms); // covers windowEnd: round 2 starts, windowEnd = 20,000
        Assert.Equal(10 * Ms, h.LastRoundMinRtt);
        Assert.Equal(50 * Ms, h.CurrentRoundMinRtt);

        // Sequence numbers wrap around: windowEnd past 2^32 still orders correctly.
        var w = new HyStartPlusPlus();
        w.OnAck(uint.MaxValue - 5000, 3000, 10 * Ms);
        w.OnAck(uint.MaxValue - 1000, 6000, 10 * Ms);
        Assert.Equal(TimeSpan.MaxValue, w.LastRoundMinRtt);
        w.OnAck(3000, 6000, 10 * Ms);
        Assert.Equal(10 * Ms, w.LastRoundMinRtt);
    }

    /// <summary>
    /// A connection over a hand-driven peer that acknowledges every segment one RTT after it was
    /// sent, echoing its timestamp: the connection's own RTT samples drive HyStart++.
    /// </summary>
    private static TcpTestContext RunConnection(TcpConnectionOptions o, params int[] rttMsPerRound)
    {
        var ctx = new TcpTestContext(o) { PeerWindowScale = 10 };
        ctx.Establish(sack: false);
        ctx.Source.Append(TcpTestContext.Bytes(64 << 20));
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        foreach (int rtt in rttMsPerRound)
        {
            var sent = ctx.Out.Take().Where(s => s.Length > 0).ToList();
            Assert.NotEmpty(sent);
            ctx.Advance(TimeSpan.FromMilliseconds(rtt));
            foreach (var seg in sent)
            {
                var ack = ctx.Segment(TcpFlags.Ack, ack: seg.Seq + (uint)seg.Length);
                ack.Options.TsEcr = seg.Info.Options.TsVal;
                ctx.Send(in ack, Array.Empty<byte>());
            }

            ctx.Conn.Poll(ctx.Now, ctx.Out);
        }

        return ctx;
    }

    [Fact]
    public void Connection_WithCubic_LeavesSlowStartOnAnRttRise_WithoutALoss()
    {
        var cubic = new TcpConnectionOptions { CongestionControl = TcpCongestionControl.Cubic };
        int initialSsthresh = new TcpTestContext(cubic).Conn.SlowStartThreshold;
        int[] rounds = { 10, 10, 10, 30, 30, 30, 30, 30, 30, 30, 30 };

        var on = RunConnection(cubic, rounds);
        Assert.True(on.Conn.SlowStartThreshold < initialSsthresh, $"ssthresh {on.Conn.SlowStartThreshold}: still slow start");
        Assert.InRange(on.Conn.SlowStartThreshold, 200 * on.Conn.SendMss, 800 * on.Conn.SendMss); // about 170 at the rise, then +25 % a round
        Assert.False(on.Conn.InRecovery);

        var off = RunConnection(new TcpConnectionOptions { CongestionControl = TcpCongestionControl.Cubic, HyStart = false }, rounds);
        Assert.Equal(initialSsthresh, off.Conn.SlowStartThreshold);
        Assert.True(off.Conn.CongestionWindow > 4 * on.Conn.CongestionWindow, $"{off.Conn.CongestionWindow} vs {on.Conn.CongestionWindow}");

        var reno = RunConnection(new TcpConnectionOptions(), rounds);
        Assert.Equal(off.Conn.CongestionWindow, reno.Conn.CongestionWindow); // NewReno ignores HyStart++
    }

    [Fact]
    public void Connection_WithCubic_SteadyRtt_KeepsSlowStart()
    {
        var cubic = new TcpConnectionOptions { CongestionControl = TcpCongestionControl.Cubic };
        int initialSsthresh = new TcpTestContext(cubic).Conn.SlowStartThreshold;
        var ctx = RunConnection(cubic, 10, 10, 10, 11, 12, 10, 13);
        Assert.Equal(initialSsthresh, ctx.Conn.SlowStartThreshold);
        Assert.Equal(10 * ctx.Conn.SendMss << 7, ctx.Conn.CongestionWindow);
    }

    /// <summary>One bulk transfer over a 10 Mbit/s bottleneck (20 ms RTT, a drop-tail queue of 300 segments, deep as on many access links); what the sender had to retransmit.</summary>
    private static (int Retransmitted, int QueueDrops, TimeSpan Took, int Ssthresh) BulkOverBottleneck(bool hyStart, int seed)
    {
        var o = new TcpConnectionOptions { CongestionControl = TcpCongestionControl.Cubic, HyStart = hyStart };
        var link = new LinkProfile(Delay: TimeSpan.FromMilliseconds(10), BottleneckBitsPerSecond: 10_000_000, BottleneckQueue: 300);
        var h = new TcpPairHarness(seed, link, o, o, serverSink: 4 << 20);
        h.Client.SourceLimit = 8 << 20; // the window, not the application, limits the flight
        byte[] data = TcpTestContext.Bytes(3 << 20, seed);
        uint highest = 0;
        bool sent = false;
        int retransmitted = 0;
        h.OnWire = (from, seg) =>
        {
            if (from != h.Client || seg.Length == 0)
            {
                return;
            }

            uint end = seg.Seq + (uint)seg.Length;
            if (sent && TcpSeq.Le(end, highest))
            {
                retransmitted++;
            }
            else
            {
                highest = end;
                sent = true;
            }
        };

        int ssthresh = 0;
        h.Client.Send(data, close: true);
        h.Connect();
        bool done = h.RunUntil(() =>
        {
            if (ssthresh == 0 && h.Client.Conn.SlowStartThreshold < 1 << 30)
            {
                ssthresh = h.Client.Conn.SlowStartThreshold; // the first exit from slow start
            }

            return h.Server.Sink.All.Count == data.Length;
        }, TimeSpan.FromMinutes(5));
        Assert.True(done);
        Assert.Equal(data, h.Server.Sink.All.ToArray());
        return (retransmitted, h.QueueDrops, h.Now, ssthresh);
    }

    [Fact]
    public void Bottleneck_HyStartLeavesSlowStartBeforeTheQueueOverflows_SlowStartAloneOverflowsIt()
    {
        // The link has no random impairment: the seed only picks the bytes. Measured here:
        // on, 0 drops and 2.63 s simulated; off, 212 queue drops, 901 segments sent again, 20.3 s.
        var on = BulkOverBottleneck(hyStart: true, seed: 31);
        var off = BulkOverBottleneck(hyStart: false, seed: 31);
        string report = $"HyStart++ on: {on.Retransmitted} retransmitted, {on.QueueDrops} queue drops, ssthresh {on.Ssthresh}, {on.Took.TotalSeconds:F2} s; " +
                        $"off: {off.Retransmitted} retransmitted, {off.QueueDrops} queue drops, ssthresh {off.Ssthresh}, {off.Took.TotalSeconds:F2} s";
        Console.WriteLine(report);
        Assert.True(off.QueueDrops > 50, report);
        Assert.Equal(0, on.QueueDrops);
        Assert.Equal(0, on.Retransmitted);
        Assert.InRange(on.Ssthresh, 100 * 1460, 300 * 1460); // left slow start between the BDP (17 segments) and BDP + queue (317)
        Assert.True(on.Took < off.Took, report);
    }
}
