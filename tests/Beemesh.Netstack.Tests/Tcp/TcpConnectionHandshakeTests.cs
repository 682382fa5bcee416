using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Tcp;

public class TcpConnectionHandshakeTests
{
    [Fact]
    public void PassiveOpen_RepliesSynAckWithNegotiatedOptions_ThenEstablishes()
    {
        var ctx = new TcpTestContext();
        var syn = ctx.PeerSyn();
        ctx.Conn.AcceptSyn(in syn, ctx.Now, ctx.Out);

        Assert.Equal(TcpState.SynReceived, ctx.Conn.State);
        var synAck = Assert.Single(ctx.Out.Segments);
        Assert.True(synAck.Has(TcpFlags.Syn | TcpFlags.Ack));
        Assert.Equal(TcpTestContext.OurIss, synAck.Seq);
        Assert.Equal(TcpTestContext.PeerIss + 1, synAck.Ack);
        Assert.Equal(1460, synAck.Info.Options.Mss);
        Assert.True(synAck.Info.Options.HasWindowScale);
        Assert.Equal(7, synAck.Info.Options.WindowScale);
        Assert.True(synAck.Info.Options.SackPermitted);
        Assert.True(synAck.Info.Options.HasTimestamp);
        Assert.Equal(ctx.PeerTsVal, synAck.Info.Options.TsEcr);

        ctx.Inject(TcpFlags.Ack, ack: TcpTestContext.OurIss + 1);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
        Assert.Equal(TcpEvents.Established, ctx.Conn.TakeEvents());
        Assert.True(ctx.Conn.TimestampsEnabled);
        Assert.True(ctx.Conn.SackEnabled);
        Assert.Equal(1460 - 12, ctx.Conn.SendMss);
        Assert.Equal(10 * (1460 - 12), ctx.Conn.CongestionWindow);
    }

    [Fact]
    public void PassiveOpen_WithoutOptions_EchoesNone()
    {
        var ctx = new TcpTestContext { PeerTimestamps = false, PeerWindowScale = 0 };
        var syn = ctx.PeerSyn(mss: 0, sack: false);
        ctx.Conn.AcceptSyn(in syn, ctx.Now, ctx.Out);
        var synAck = ctx.Out.Last;
        Assert.False(synAck.Info.Options.HasWindowScale);
        Assert.False(synAck.Info.Options.SackPermitted);
        Assert.False(synAck.Info.Options.HasTimestamp);
        ctx.Inject(TcpFlags.Ack, ack: TcpTestContext.OurIss + 1);
        Assert.Equal(536, ctx.Conn.SendMss);
        Assert.Equal(0, ctx.Conn.ReceiveWindowScale);
    }

    [Fact]
    public void ActiveOpen_SendsSyn_AcceptsSynAck_SendsAck()
    {
        var ctx = new TcpTestContext();
        ctx.Conn.Connect(ctx.Now, ctx.Out);
        Assert.Equal(TcpState.SynSent, ctx.Conn.State);
        var syn = ctx.Out.Last;
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.True(syn.Info.Options.HasTimestamp);

        var synAck = ctx.PeerSyn();
        synAck.Flags |= TcpFlags.Ack;
        synAck.Ack = TcpTestContext.OurIss + 1;
        ctx.Advance(TimeSpan.FromMilliseconds(30));
        synAck.Options.TsEcr = syn.Info.Options.TsVal;
        ctx.Send(in synAck, Array.Empty<byte>());

        Assert.Equal(TcpState.Established, ctx.Conn.State);
        Assert.True((ctx.Conn.TakeEvents() & TcpEvents.Established) != 0);
        var ack = ctx.Out.Last;
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(TcpTestContext.PeerIss + 1, ack.Ack);
        Assert.Equal(TimeSpan.FromMilliseconds(30), ctx.Conn.SmoothedRtt);
    }

    [Fact]
    public void ActiveOpen_SynAckWithWrongAck_GetsReset()
    {
        var ctx = new TcpTestContext();
        ctx.Conn.Connect(ctx.Now, ctx.Out);
        var synAck = ctx.PeerSyn();
        synAck.Flags |= TcpFlags.Ack;
        synAck.Ack = 12345;
        ctx.Send(in synAck, Array.Empty<byte>());
        Assert.Equal(TcpState.SynSent, ctx.Conn.State);
        Assert.True(ctx.Out.Last.Has(TcpFlags.Rst));
        Assert.Equal(12345u, ctx.Out.Last.Seq);
    }

    [Fact]
    public void SimultaneousOpen_GoesThroughSynReceived()
    {
        var ctx = new TcpTestContext();
        ctx.Conn.Connect(ctx.Now, ctx.Out);
        var syn = ctx.PeerSyn();
        ctx.Send(in syn, Array.Empty<byte>());
        Assert.Equal(TcpState.SynReceived, ctx.Conn.State);
        Assert.True(ctx.Out.Last.Has(TcpFlags.Syn | TcpFlags.Ack));
        ctx.Inject(TcpFlags.Ack, ack: TcpTestContext.OurIss + 1);
        Assert.Equal(TcpState.Established, ctx.Conn.State);
    }

    [Fact]
    public void SynRetransmission_BacksOff_ThenGivesUp()
    {
        var ctx = new TcpTestContext(new TcpConnectionOptions { MaxSynRetries = 3 });
        ctx.Conn.Connect(ctx.Now, ctx.Out);
        var times = new List<TimeSpan>();
        TimeSpan start = ctx.Now;
        while (ctx.Conn.State != TcpState.Closed && ctx.Conn.NextDeadline is { } d)
        {
            ctx.RunTimersUntil(d);
            times.Add(ctx.Now - start);
        }

        var syns = ctx.Out.Segments.Where(s => s.Has(TcpFlags.Syn)).ToList();
        Assert.Equal(4, syns.Count);
        Assert.Equal(new[] { 1.0, 3.0, 7.0, 15.0 }, times.Select(t => t.TotalSeconds).ToArray());
        Assert.Equal(TcpEvents.Reset | TcpEvents.Closed, ctx.Conn.TakeEvents());
    }

    [Fact]
    public void LostSynAck_IsRetransmittedOnTimer_AndOnRetransmittedSyn()
    {
        var ctx = new TcpTestContext();
        var syn = ctx.PeerSyn();
        ctx.Conn.AcceptSyn(in syn, ctx.Now, ctx.Out);
        ctx.Send(in syn, Array.Empty<byte>());
        Assert.Equal(2, ctx.Out.Segments.Count(s => s.Has(TcpFlags.Syn | TcpFlags.Ack)));
        ctx.RunTimersUntil(ctx.Now + TimeSpan.FromSeconds(1.01));
        Assert.Equal(3, ctx.Out.Segments.Count(s => s.Has(TcpFlags.Syn | TcpFlags.Ack)));
        Assert.Equal(TcpState.SynReceived, ctx.Conn.State);
    }

    [Fact]
    public void Pair_HandshakeBothDirections()
    {
        var h = new TcpPairHarness(1, new LinkProfile());
        h.Connect();
        Assert.True(h.RunUntil(() => h.Client.Conn.State == TcpState.Established && h.Server.Conn.State == TcpState.Established, TimeSpan.FromSeconds(5)));
        Assert.True((h.Client.Events & TcpEvents.Established) != 0);
        Assert.True((h.Server.Events & TcpEvents.Established) != 0);
        Assert.Equal(7, h.Client.Conn.SendWindowScale);
        Assert.True(h.Server.Conn.SackEnabled);
    }
}
