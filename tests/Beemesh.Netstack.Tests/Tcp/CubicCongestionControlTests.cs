using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Tcp;

public class CubicCongestionControlTests
{
    private const int Mss = 1000;

    /// <summary>Grows the window by slow start to <paramref name="segments"/>, then loses once with that much in flight.</summary>
    private static CubicCongestionControl LostAt(int segments, bool sack, ref TimeSpan now, bool fastConvergence = true)
    {
        var cc = new CubicCongestionControl { FastConvergence = fastConvergence };
        cc.Initialize(Mss);
        while (cc.CongestionWindow < segments * Mss)
        {
            cc.OnAck(Math.Min(Mss, segments * Mss - cc.CongestionWindow), TimeSpan.Zero, now);
        }

        Assert.Equal(segments * Mss, cc.CongestionWindow);
        cc.OnFastRetransmit(segments * Mss, sack, now);
        return cc;
    }

    /// <summary>An ACK clock: every round trip the whole window is acknowledged, one segment per ACK, evenly spread.</summary>
    private static void Rounds(ICongestionControl cc, TimeSpan rtt, ref TimeSpan now, int rounds, List<double>? windowPerRound = null)
    {
        for (int r = 0; r < rounds; r++)
        {
            int segments = Math.Max(1, cc.CongestionWindow / Mss);
            for (int i = 0; i < segments; i++)
            {
                cc.OnAck(Mss, rtt, now + rtt * i / segments);
            }

            now += rtt;
            windowPerRound?.Add((double)cc.CongestionWindow / Mss);
        }
    }

    private static double Cubic(double t, double k, double wMax) => CubicCongestionControl.C * Math.Pow(t - k, 3) + wMax;

    [Fact]
    public void Loss_CutsToBetaOfTheFlight_AndRemembersTheWindow()
    {
        var now = TimeSpan.FromSeconds(1);
        var cc = LostAt(100, sack: true, ref now);
        Assert.Equal(70 * Mss, cc.SlowStartThreshold);
        Assert.Equal(70 * Mss, cc.CongestionWindow);
        Assert.Equal(100.0 * Mss, cc.MaxWindowBeforeReduction);

        var noSack = LostAt(100, sack: false, ref now);
        Assert.Equal(73 * Mss, noSack.CongestionWindow); // fast recovery's ssthresh + 3 SMSS, as NewReno
        noSack.OnRecoveryDuplicateAck();
        Assert.Equal(74 * Mss, noSack.CongestionWindow);
    }

    [Fact]
    public void FastConvergence_LowersWmax_WhenLossComesBeforeTheLastWmax()
    {
        var now = TimeSpan.FromSeconds(1);
        foreach (bool fc in new[] { true, false })
        {
            var cc = LostAt(100, sack: true, ref now, fc);
            cc.OnRecoveryExit(70 * Mss);
            Assert.Equal(70 * Mss, cc.CongestionWindow);
            cc.OnFastRetransmit(70 * Mss, sack: true, now); // the next loss, below the old W_max
            Assert.Equal(fc ? 70 * Mss * (1 + CubicCongestionControl.Beta) / 2 : 70.0 * Mss, cc.MaxWindowBeforeReduction, 6);
            Assert.Equal(49 * Mss, cc.SlowStartThreshold);
        }
    }

    [Fact]
    public void WindowGrowth_FollowsTheCubicCurve_ConcaveThenPlateauThenConvex()
    {
        var now = TimeSpan.FromSeconds(1);
        var cc = LostAt(100, sack: true, ref now);
        cc.OnRecoveryExit(70 * Mss);
        var rtt = TimeSpan.FromMilliseconds(100);
        var w = new List<double>();
        Rounds(cc, rtt, ref now, 80, w); // 8 s: past K = cbrt(30 / 0.4) ≈ 4.22 s

        double k = Math.Cbrt(30 / CubicCongestionControl.C);
        Assert.Equal(k, cc.TimeToMaxWindow, 6);
        for (int r = 0; r < w.Count; r++)
        {
            double t = (r + 1) * rtt.TotalSeconds; // end of round r
            double lo = Cubic(t - rtt.TotalSeconds, k, 100) - 1;
            // From round ~57 the Reno estimate (70 + 0.53 per round, then 1 per round past 100)
            // overtakes the curve's slow start beyond W_max and the window may run ahead of it.
            double hi = r < 55 ? Cubic(t + rtt.TotalSeconds, k, 100) + 1 : double.MaxValue;
            Assert.True(w[r] >= lo && w[r] <= hi, $"round {r} (t = {t:F1} s): cwnd {w[r]:F1} segments, curve between {lo:F1} and {hi:F1}");
        }

        double early = w[9] - w[0];        // first second after the loss: fast, concave
        double plateau = w[46] - w[37];    // the second around K: nearly flat at W_max
        double late = w[79] - w[70];       // the ninth second: convex probing beyond W_max
        Assert.True(early > 3 * plateau, $"early {early:F1} plateau {plateau:F1}");
        Assert.True(late > 3 * plateau, $"late {late:F1} plateau {plateau:F1}");
        Assert.InRange(w[41], 99, 101.5); // back at W_max after K
        Assert.True(w[79] > 110);
    }

    [Fact]
    public void ShortRtt_GrowsInTheRenoFriendlyRegion_AlphaThenOne()
    {
        var now = TimeSpan.FromSeconds(1);
        var cc = LostAt(100, sack: true, ref now);
        cc.OnRecoveryExit(70 * Mss);
        var rtt = TimeSpan.FromMilliseconds(1); // over 40 ms the cubic curve moves by less than one segment
        var w = new List<double>();
        Rounds(cc, rtt, ref now, 40, w);
        double alpha = 3 * (1 - CubicCongestionControl.Beta) / (1 + CubicCongestionControl.Beta);
        Assert.InRange(w[39], 70 + 40 * alpha - 1.5, 70 + 40 * alpha + 1.5);
        Assert.InRange(cc.RenoEstimate / Mss, 70 + 40 * alpha - 1.5, 70 + 40 * alpha + 1.5);

        // Once W_est passes the window before the loss (100 segments) it grows as Reno: α = 1.
        Rounds(cc, rtt, ref now, 60, w);
        Assert.True(w[^21] > 100.5, $"cwnd {w[^21]:F1}");
        double perRound = (w[^1] - w[^21]) / 20;
        Assert.InRange(perRound, 0.9, 1.1);

        // The same trace with NewReno: half the window, then one segment per round trip.
        var reno = new NewRenoCongestionControl();
        reno.Initialize(Mss);
        reno.OnFastRetransmit(100 * Mss, sack: true, now);
        reno.OnRecoveryExit(100 * Mss);
        Rounds(reno, rtt, ref now, 40);
        Assert.Equal(90 * Mss, reno.CongestionWindow);
    }

    [Fact]
    public void Timeout_OneSegment_BetaThreshold_ThenConvexFromTheNewWindow()
    {
        var now = TimeSpan.FromSeconds(1);
        var cc = new CubicCongestionControl();
        cc.Initialize(Mss);
        Rounds(cc, TimeSpan.FromMilliseconds(10), ref now, 4); // slow start to 10 * 2^4 segments
        Assert.Equal(160 * Mss, cc.CongestionWindow);
        cc.OnRetransmissionTimeout(160 * Mss, firstTimeout: true, now);
        Assert.Equal(Mss, cc.CongestionWindow);
        Assert.Equal(112 * Mss, cc.SlowStartThreshold);
        cc.OnRetransmissionTimeout(Mss, firstTimeout: false, now);
        Assert.Equal(112 * Mss, cc.SlowStartThreshold);

        var rtt = TimeSpan.FromMilliseconds(100);
        var w = new List<double>();
        while (cc.CongestionWindow < cc.SlowStartThreshold)
        {
            Rounds(cc, rtt, ref now, 1, w);
        }

        Rounds(cc, rtt, ref now, 1, w);
        Assert.Equal(0, cc.TimeToMaxWindow); // §4.8: K = 0 and W_max = the window at the epoch's start
        double start = cc.MaxWindowBeforeReduction / Mss;
        Assert.InRange(start, 112, 130);
        Rounds(cc, rtt, ref now, 40, w);
        double first = w[^31] - w[^41];
        double last = w[^1] - w[^11];
        Assert.True(last > first, $"first second +{first:F1}, fourth +{last:F1}: convex from the start");
    }

    [Property(MaxTest = 200)]
    public void AnyEventSequence_KeepsAtLeastOneSegment_AndThresholdAtLeastTwo(int[] ops)
    {
        var cc = new CubicCongestionControl();
        cc.Initialize(Mss);
        var now = TimeSpan.FromSeconds(1);
        foreach (int op in ops ?? Array.Empty<int>())
        {
            long bytes = (op >> 4) & 0xFFFFF;
            now += TimeSpan.FromMilliseconds((op >> 24) & 0x7F);
            switch (op & 7)
            {
                case 0:
                case 1:
                case 2:
                    cc.OnAck(bytes, TimeSpan.FromMilliseconds(op & 0xFF), now);
                    break;
                case 3:
                    cc.OnFastRetransmit(bytes, (op & 8) != 0, now);
                    break;
                case 4:
                    cc.OnRecoveryDuplicateAck();
                    break;
                case 5:
                    cc.OnPartialAck(bytes);
                    break;
                case 6:
                    cc.OnRecoveryExit(bytes);
                    break;
                default:
                    cc.OnRetransmissionTimeout(bytes, (op & 8) != 0, now);
                    break;
            }

            Assert.True(cc.CongestionWindow >= Mss, $"cwnd {cc.CongestionWindow}");
            Assert.True(cc.SlowStartThreshold >= 2 * Mss, $"ssthresh {cc.SlowStartThreshold}");
        }
    }

    [Fact]
    public void Connection_WithCubicOption_ReducesToBetaOnFastRetransmit()
    {
        var ctx = new TcpTestContext(new TcpConnectionOptions { CongestionControl = TcpCongestionControl.Cubic });
        ctx.Establish(sack: false);
        int mss = ctx.Conn.SendMss;
        ctx.Source.Append(TcpTestContext.Bytes(8 * mss));
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        Assert.Equal(8, ctx.Out.Take().Count(s => s.Length == mss));
        for (int i = 0; i < 3; i++)
        {
            ctx.Inject(TcpFlags.Ack, ack: TcpTestContext.OurIss + 1);
        }

        Assert.True(ctx.Conn.InRecovery);
        Assert.Equal((int)(8 * mss * CubicCongestionControl.Beta), ctx.Conn.SlowStartThreshold); // NewReno: 4 * mss
        Assert.Equal(TcpTestContext.OurIss + 1, Assert.Single(ctx.Out.Take()).Seq);
    }

    public static TheoryData<double, int> LossCases => new() { { 0.0, 21 }, { 0.05, 22 }, { 0.20, 23 } };

    [Theory]
    [MemberData(nameof(LossCases))]
    public void Transfer_WithCubic_IsByteExact_UnderLossReorderDuplication(double loss, int seed)
    {
        var o = new TcpConnectionOptions { CongestionControl = TcpCongestionControl.Cubic, Sack = seed % 2 == 0 };
        var link = new LinkProfile(Loss: loss, Duplicate: loss > 0 ? 0.05 : 0, Reorder: loss > 0 ? 0.1 : 0);
        var h = new TcpPairHarness(seed, link, o, o);
        byte[] up = TcpTestContext.Bytes(1 << 20, seed);
        byte[] down = TcpTestContext.Bytes(200_000, seed + 100);
        h.Client.Send(up, close: true);
        h.Server.Send(down, close: false);
        h.Connect();
        bool done = h.RunUntil(() => h.Client.Conn.State == TcpState.Closed && h.Server.Conn.State == TcpState.Closed, TimeSpan.FromHours(2));
        Assert.Equal(up, h.Server.Sink.All.ToArray());
        Assert.Equal(down, h.Client.Sink.All.ToArray());
        Assert.True(done, $"client {h.Client.Conn.State} server {h.Server.Conn.State}");
    }

    [Theory]
    [InlineData(null, TcpCongestionControl.NewReno)]
    [InlineData(" ", TcpCongestionControl.NewReno)]
    [InlineData("newreno", TcpCongestionControl.NewReno)]
    [InlineData("Reno", TcpCongestionControl.NewReno)]
    [InlineData("CUBIC", TcpCongestionControl.Cubic)]
    public void Setting_ParsesNames(string? text, TcpCongestionControl expected)
        => Assert.Equal(expected, TcpCongestionControlSetting.Parse(text));

    [Theory]
    [InlineData("bbr")]
    [InlineData("1")]
    public void Setting_RefusesUnknownNames_WithTheVariableInTheMessage(string text)
    {
        var e = Assert.Throws<FormatException>(() => TcpCongestionControlSetting.Parse(text));
        Assert.Contains(TcpCongestionControlSetting.Variable, e.Message);
    }
}
