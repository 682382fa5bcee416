using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Tcp;

public class TcpConnectionBehaviourTests
{
    private const uint DataStart = TcpTestContext.OurIss + 1;

    private static TcpTestContext Established(TcpConnectionOptions? o = null, long sink = 1 << 20, bool sack = true)
    {
        var ctx = new TcpTestContext(o, sink);
        ctx.Establish(sack: sack);
        return ctx;
    }

    [Fact]
    public void ZeroWindow_ArmsPersist_ProbesWithBackoff_ThenSendsWhenReopened()
    {
        var ctx = Established();
        ctx.Inject(TcpFlags.Ack, ack: DataStart, window: 0);
        ctx.Source.Append(TcpTestContext.Bytes(5000));
        TimeSpan armedAt = ctx.Now;
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        Assert.Empty(ctx.Out.Segments);
        TimeSpan first = Assert.IsType<TimeSpan>(ctx.Conn.NextDeadline);
        TimeSpan firstInterval = first - armedAt;
        Assert.True(firstInterval > TimeSpan.Zero);

        ctx.RunTimersUntil(first);
        var probe = Assert.Single(ctx.Out.Take());
        Assert.Equal(DataStart - 1, probe.Seq);
        Assert.Equal(0, probe.Length);
        Assert.Equal(first, ctx.Now);
        TimeSpan second = Assert.IsType<TimeSpan>(ctx.Conn.NextDeadline);
        Assert.Equal(2 * firstInterval, second - first); // the persist interval doubles after each probe

        ctx.RunTimersUntil(second);
        Assert.Equal(DataStart - 1, Assert.Single(ctx.Out.Take()).Seq);
        TimeSpan third = Assert.IsType<TimeSpan>(ctx.Conn.NextDeadline);
        Assert.Equal(4 * firstInterval, third - second);

        ctx.Inject(TcpFlags.Ack, ack: DataStart, window: 100); // 100 << 7 = 12800 bytes
        var data = ctx.Out.Take().Where(s => s.Length > 0).ToList();
        Assert.Equal(5000, data.Sum(s => s.Length));
        Assert.Equal(DataStart, data[0].Seq);
    }

    [Fact]
    public void ReceiverFull_AcceptsOnlyWhatSinkTakes_AdvertisesZero_ThenWindowUpdate()
    {
        var ctx = Established(sink: 2000);
        byte[] payload = TcpTestContext.Bytes(2896);
        ctx.Inject(TcpFlags.Ack, payload: payload[..1448]);
        ctx.Inject(TcpFlags.Ack | TcpFlags.Psh, seq: ctx.PeerNext, payload: payload[1448..]);
        var ack = ctx.Out.Last;
        Assert.Equal(TcpTestContext.PeerIss + 1 + 2000, ack.Ack);
        Assert.Equal(0, ack.Info.Window);
        Assert.Equal(payload[..2000], ctx.Sink.All.ToArray());

        // A persist probe (1 byte) into the zero window is acknowledged but not accepted.
        ctx.Out.Take();
        ctx.Inject(TcpFlags.Ack, seq: TcpTestContext.PeerIss + 2001, payload: payload[2000..2001]);
        Assert.Equal(2000, ctx.Sink.All.Count);
        Assert.Equal(TcpTestContext.PeerIss + 2001, ctx.Out.Last.Ack);

        ctx.Out.Take();
        ctx.Sink.DrainAll();
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        var update = Assert.Single(ctx.Out.Take());
        Assert.True(update.Info.Window > 0);
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        Assert.Empty(ctx.Out.Segments); // no repeated window updates
    }

    [Fact]
    public void WindowScaling_LetsMoreThan64KBeInFlight()
    {
        var h = new TcpPairHarness(5, new LinkProfile(Delay: TimeSpan.FromMilliseconds(20)), serverSink: 8 << 20);
        h.Client.SourceLimit = 4 << 20;
        long maxFlight = 0;
        h.OnWire = (e, s) => { if (e == h.Client) maxFlight = Math.Max(maxFlight, e.Conn.BytesInFlight); };
        h.Client.Send(TcpTestContext.Bytes(2 << 20), close: true);
        h.Connect();
        Assert.True(h.RunUntil(() => h.Server.Sink.All.Count == 2 << 20, TimeSpan.FromMinutes(1)));
        Assert.True(maxFlight > 65535, $"max in flight {maxFlight}");
        Assert.Equal(7, h.Client.Conn.SendWindowScale);
    }

    [Fact]
    public void Paws_DropsSegmentWithOlderTimestamp_AndAcks()
    {
        var ctx = Established();
        ctx.Inject(TcpFlags.Ack | TcpFlags.Psh, payload: TcpTestContext.Bytes(10));
        int before = ctx.Sink.All.Count;
        uint recent = ctx.PeerTsVal;
        var old = ctx.Segment(TcpFlags.Ack | TcpFlags.Psh, length: 10);
        old.Options.TsVal = ctx.PeerTsVal - 1000;
        ctx.Out.Take();
        ctx.Send(in old, TcpTestContext.Bytes(10, 2));
        Assert.Equal(before, ctx.Sink.All.Count);
        var ack = Assert.Single(ctx.Out.Take());
        Assert.Equal(ctx.PeerNext, ack.Ack);
        Assert.Equal(recent, ack.Info.Options.TsEcr); // echoes TS.Recent, not the stale value
    }

    [Fact]
    public void Timestamps_AreEchoed_AndGiveRttSamples()
    {
        var ctx = Established();
        ctx.Source.Append(TcpTestContext.Bytes(1000));
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        var seg = ctx.Out.Last;
        Assert.Equal(ctx.PeerTsVal, seg.Info.Options.TsEcr);
        ctx.Advance(TimeSpan.FromMilliseconds(50));
        var ack = ctx.Segment(TcpFlags.Ack, ack: DataStart + 1000);
        ack.Options.TsEcr = seg.Info.Options.TsVal;
        ctx.Send(in ack, Array.Empty<byte>());
        Assert.Equal(TimeSpan.FromMilliseconds(50.0 / 8), ctx.Conn.SmoothedRtt); // first sample (handshake) was 0 ms
        Assert.Equal(1000, ctx.Source.TotalDiscarded);
    }

    public static TheoryData<string> States => new() { "SynSent", "SynReceived", "Established", "FinWait1", "FinWait2", "CloseWait", "LastAck", "Closing" };

    [Theory]
    [MemberData(nameof(States))]
    public void ValidReset_ClosesWithResetEvent_InEveryState(string state)
    {
        var ctx = new TcpTestContext();
        uint rstAck = 0;
        switch (state)
        {
            case "SynSent":
                ctx.Conn.Connect(ctx.Now, ctx.Out);
                rstAck = TcpTestContext.OurIss + 1;
                break;
            case "SynReceived":
                var syn = ctx.PeerSyn();
                ctx.Conn.AcceptSyn(in syn, ctx.Now, ctx.Out);
                break;
            default:
                ctx.Establish();
                if (state is "FinWait1" or "FinWait2" or "Closing")
                {
                    ctx.Conn.Close();
                    ctx.Conn.Poll(ctx.Now, ctx.Out);
                }

                if (state == "FinWait2")
                {
                    ctx.Inject(TcpFlags.Ack, ack: DataStart + 1);
                }

                if (state == "Closing")
                {
                    ctx.Inject(TcpFlags.Ack | TcpFlags.Fin, ack: DataStart);
                }

                if (state is "CloseWait" or "LastAck")
                {
                    ctx.Inject(TcpFlags.Ack | TcpFlags.Fin, ack: DataStart);
                }

                if (state == "LastAck")
                {
                    ctx.Conn.Close();
                    ctx.Conn.Poll(ctx.Now, ctx.Out);
                }

                break;
        }

        Assert.Equal(state, ctx.Conn.State.ToString());
        ctx.Conn.TakeEvents();
        var rst = ctx.Segment(state == "SynSent" ? TcpFlags.Rst | TcpFlags.Ack : TcpFlags.Rst, ack: rstAck);
        if (state == "SynSent")
        {
            rst.Seq = 0;
        }

        ctx.Send(in rst, Array.Empty<byte>());
        Assert.Equal(TcpState.Closed, ctx.Conn.State);
        Assert.Equal(TcpEvents.Reset | TcpEvents.Closed, ctx.Conn.TakeEvents());
        Assert.Null(ctx.Conn.NextDeadline);
    }

    [Fact]
    public void Reset_OutOfWindow_IsIgnored_InWindowInexact_GetsChallengeAck()
    {
        var ctx = Established();
        ctx.Inject(TcpFlags.Rst, seq: ctx.PeerNext + 50_000_000);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
        Assert.Empty(ctx.Out.Segments);

        ctx.Inject(TcpFlags.Rst, seq: ctx.PeerNext + 100);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
        var challenge = Assert.Single(ctx.Out.Take());
        Assert.Equal(TcpFlags.Ack, challenge.Flags);
        Assert.Equal(ctx.PeerNext, challenge.Ack);

        ctx.Inject(TcpFlags.Rst | TcpFlags.Ack, seq: ctx.PeerNext - 10);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
        Assert.Equal(TcpEvents.None, ctx.Conn.TakeEvents());
    }

    [Fact]
    public void SynInEstablished_GetsChallengeAck_NotReset()
    {
        var ctx = Established();
        ctx.Inject(TcpFlags.Syn, seq: ctx.PeerNext + 10);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
        var ack = Assert.Single(ctx.Out.Segments);
        Assert.Equal(TcpFlags.Ack, ack.Flags);
    }

    [Fact]
    public void SimultaneousClose_GoesThroughClosing_ThenTimeWait_ThenClosed()
    {
        var ctx = Established();
        ctx.Conn.Close();
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        var fin = ctx.Out.Last;
        Assert.True(fin.Has(TcpFlags.Fin));
        Assert.Equal(DataStart, fin.Seq);

        ctx.Inject(TcpFlags.Ack | TcpFlags.Fin, ack: DataStart); // peer's FIN crosses ours
        Assert.Equal(TcpState.Closing, ctx.Conn.State);
        Assert.Equal(ctx.PeerNext, ctx.Out.Last.Ack);
        ctx.Inject(TcpFlags.Ack, ack: DataStart + 1);
        Assert.Equal(TcpState.TimeWait, ctx.Conn.State);
        Assert.Equal(ctx.Now + TimeSpan.FromSeconds(60), ctx.Conn.NextDeadline);
        ctx.Conn.TakeEvents();
        ctx.RunTimersUntil(ctx.Now + TimeSpan.FromSeconds(60));
        Assert.Equal(TcpState.Closed, ctx.Conn.State);
        Assert.Equal(TcpEvents.Closed, ctx.Conn.TakeEvents());
    }

    [Fact]
    public void HalfClose_PeerFinishesFirst_WeKeepSending()
    {
        var ctx = Established();
        ctx.Inject(TcpFlags.Ack | TcpFlags.Fin, ack: DataStart);
        Assert.Equal(TcpState.CloseWait, ctx.Conn.State);
        Assert.True((ctx.Conn.TakeEvents() & TcpEvents.PeerFinished) != 0);
        ctx.Source.Append(TcpTestContext.Bytes(3000));
        ctx.Conn.Close();
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        Assert.Equal(TcpState.LastAck, ctx.Conn.State);
        Assert.Equal(3000, ctx.Out.Segments.Sum(s => s.Length));
        Assert.True(ctx.Out.Last.Has(TcpFlags.Fin));
        ctx.Inject(TcpFlags.Ack, ack: DataStart + 3001);
        Assert.Equal(TcpState.Closed, ctx.Conn.State);
        Assert.Equal(3000, ctx.Source.TotalDiscarded);
    }

    [Fact]
    public void HalfClose_WeFinishFirst_PeerKeepsSending()
    {
        var ctx = Established();
        ctx.Conn.Close();
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        ctx.Inject(TcpFlags.Ack, ack: DataStart + 1);
        Assert.Equal(TcpState.FinWait2, ctx.Conn.State);
        byte[] data = TcpTestContext.Bytes(4000);
        ctx.Inject(TcpFlags.Ack, payload: data[..2000]);
        ctx.Inject(TcpFlags.Ack | TcpFlags.Fin, payload: data[2000..]);
        Assert.Equal(data, ctx.Sink.All.ToArray());
        Assert.Equal(TcpState.TimeWait, ctx.Conn.State);
        Assert.Equal(ctx.PeerNext, ctx.Out.Last.Ack);
    }

    [Fact]
    public void Fin_IsRetransmitted_OnTimeout_WithSameSequence()
    {
        var ctx = Established();
        ctx.Source.Append(TcpTestContext.Bytes(100));
        ctx.Conn.Close();
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        ctx.Inject(TcpFlags.Ack, ack: DataStart + 100); // data acked, FIN lost
        ctx.Out.Take();
        ctx.RunTimersUntil(ctx.Conn.NextDeadline!.Value);
        var fin = Assert.Single(ctx.Out.Take());
        Assert.True(fin.Has(TcpFlags.Fin));
        Assert.Equal(DataStart + 100, fin.Seq);
        Assert.Equal(0, fin.Length);
    }

    [Fact]
    public void KeepAlive_ProbesAfterIdle_AbortsAfterProbes()
    {
        var o = new TcpConnectionOptions { KeepAliveIdle = TimeSpan.FromSeconds(10), KeepAliveInterval = TimeSpan.FromSeconds(2), KeepAliveProbes = 3 };
        var ctx = Established(o);
        TimeSpan start = ctx.Now;
        Assert.Equal(start + TimeSpan.FromSeconds(10), ctx.Conn.NextDeadline);
        ctx.RunTimersUntil(start + TimeSpan.FromSeconds(10));
        var probe = Assert.Single(ctx.Out.Take());
        Assert.Equal(DataStart - 1, probe.Seq);

        // An answer resets the probe count and the idle timer.
        ctx.Inject(TcpFlags.Ack, ack: DataStart);
        Assert.Equal(ctx.Now + TimeSpan.FromSeconds(10), ctx.Conn.NextDeadline);

        ctx.RunTimersUntil(ctx.Now + TimeSpan.FromSeconds(15.5));
        Assert.Equal(3, ctx.Out.Segments.Count);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
        ctx.RunTimersUntil(ctx.Now + TimeSpan.FromSeconds(0.5));
        Assert.Equal(TcpState.Closed, ctx.Conn.State);
        Assert.True(ctx.Out.Last.Has(TcpFlags.Rst));
        Assert.True((ctx.Conn.TakeEvents() & TcpEvents.Reset) != 0);
    }

    [Fact]
    public void Rto_BacksOffExponentially_AndAbortsAfterMaxRetransmissions()
    {
        var ctx = Established(new TcpConnectionOptions { MaxRetransmissions = 4 });
        ctx.Source.Append(TcpTestContext.Bytes(500));
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        TimeSpan start = ctx.Now;
        double r = ctx.Conn.RetransmissionTimeout.TotalSeconds;
        Assert.Equal(0.2, r); // MinRto after a near-zero handshake RTT sample
        var times = new List<double>();
        while (ctx.Conn.State != TcpState.Closed)
        {
            ctx.RunTimersUntil(ctx.Conn.NextDeadline!.Value);
            times.Add((ctx.Now - start).TotalSeconds);
        }

        Assert.Equal(new[] { r, 3 * r, 7 * r, 15 * r, 31 * r }.Select(t => Math.Round(t, 6)).ToArray(), times.Select(t => Math.Round(t, 6)).ToArray());
        var segs = ctx.Out.Segments;
        Assert.Equal(5, segs.Count(s => s.Length == 500 && s.Seq == DataStart));
        Assert.True(segs[^1].Has(TcpFlags.Rst));
        Assert.Equal(TcpEvents.Reset | TcpEvents.Closed, ctx.Conn.TakeEvents() & (TcpEvents.Reset | TcpEvents.Closed));
        Assert.Equal(0, ctx.Source.TotalDiscarded);
    }

    [Fact]
    public void DelayedAck_WaitsForTimeout_ButAcksEverySecondFullSegment()
    {
        var ctx = Established();
        ctx.Inject(TcpFlags.Ack, payload: TcpTestContext.Bytes(100));
        Assert.Empty(ctx.Out.Segments);
        Assert.Equal(ctx.Now + TimeSpan.FromMilliseconds(40), ctx.Conn.NextDeadline);
        ctx.RunTimersUntil(ctx.Now + TimeSpan.FromMilliseconds(39));
        Assert.Empty(ctx.Out.Segments);
        ctx.RunTimersUntil(ctx.Now + TimeSpan.FromMilliseconds(1));
        Assert.Equal(ctx.PeerNext, Assert.Single(ctx.Out.Take()).Ack);

        ctx.Inject(TcpFlags.Ack, payload: TcpTestContext.Bytes(1460));
        Assert.Empty(ctx.Out.Segments);
        ctx.Inject(TcpFlags.Ack, payload: TcpTestContext.Bytes(1460));
        Assert.Equal(ctx.PeerNext, Assert.Single(ctx.Out.Take()).Ack);
    }

    [Fact]
    public void OutOfOrderData_IsDropped_AndAnsweredWithImmediateDuplicateAck()
    {
        var ctx = Established();
        uint expected = ctx.PeerNext;
        ctx.Inject(TcpFlags.Ack, seq: expected + 1000, payload: TcpTestContext.Bytes(500));
        Assert.Empty(ctx.Sink.All);
        Assert.Equal(expected, Assert.Single(ctx.Out.Segments).Ack);
    }

    private static void SendSegments(TcpTestContext ctx, int count)
    {
        ctx.Source.Append(TcpTestContext.Bytes(count * ctx.Conn.SendMss));
        ctx.Conn.Poll(ctx.Now, ctx.Out);
        Assert.Equal(count, ctx.Out.Take().Count(s => s.Length == ctx.Conn.SendMss));
    }

    [Fact]
    public void FastRetransmit_AfterThreeDupAcks_ThenNewRenoPartialAck()
    {
        var ctx = Established(sack: false);
        int mss = ctx.Conn.SendMss;
        SendSegments(ctx, 8);
        for (int i = 0; i < 2; i++)
        {
            ctx.Inject(TcpFlags.Ack, ack: DataStart);
            Assert.Empty(ctx.Out.Segments);
        }

        ctx.Inject(TcpFlags.Ack, ack: DataStart);
        var rtx = Assert.Single(ctx.Out.Take());
        Assert.Equal(DataStart, rtx.Seq);
        Assert.Equal(mss, rtx.Length);
        Assert.True(ctx.Conn.InRecovery);
        Assert.Equal(4 * mss, ctx.Conn.SlowStartThreshold);

        // Partial ACK: segment 3 was lost too and is retransmitted at once.
        ctx.Inject(TcpFlags.Ack, ack: DataStart + (uint)(2 * mss));
        Assert.Contains(ctx.Out.Take(), s => s.Seq == DataStart + 2 * mss && s.Length == mss);
        Assert.True(ctx.Conn.InRecovery);

        ctx.Inject(TcpFlags.Ack, ack: DataStart + (uint)(8 * mss));
        Assert.False(ctx.Conn.InRecovery);
        Assert.Equal(8 * mss, ctx.Source.TotalDiscarded);
    }

    [Fact]
    public void SackBlocks_DriveRetransmissionOfEveryHole()
    {
        var ctx = Established();
        Assert.True(ctx.Conn.SackEnabled);
        int mss = ctx.Conn.SendMss;
        SendSegments(ctx, 10);
        uint S(int i) => DataStart + (uint)(i * mss);
        // Segments 0 and 4 lost: the peer SACKs 1-3 and 5-9.
        for (int k = 0; k < 3; k++)
        {
            var dup = ctx.Segment(TcpFlags.Ack, ack: S(0));
            dup.Options.SackCount = 2;
            dup.Options.Sack[0] = new SackBlock(S(1), S(4));
            dup.Options.Sack[1] = new SackBlock(S(5), S(6 + k));
            ctx.Send(in dup, Array.Empty<byte>());
        }

        var rtx = ctx.Out.Take().Where(s => s.Length > 0).ToList();
        Assert.Contains(rtx, s => s.Seq == S(0));
        Assert.Contains(rtx, s => s.Seq == S(4));
        Assert.DoesNotContain(rtx, s => s.Seq == S(1) || s.Seq == S(2) || s.Seq == S(5));
        Assert.True(ctx.Conn.InRecovery);
    }
}
