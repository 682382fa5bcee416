using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

public sealed class LinkModelTests
{
    [Fact]
    public void WithoutLossAMessageTakesItsLatencyButNeverOvertakesAnEarlierOneOnItsLink()
    {
        var links = new TcpLinks(4, 0);
        var random = new Random(1);
        Assert.Equal(50_000, links.Deliver(0, 1, 0, () => 50_000, random));
        // Sent later with a shorter latency: waits for the first, as TCP delivers in order.
        Assert.Equal(50_000, links.Deliver(0, 1, 1_000, () => 10_000, random));
        // Other links, the reverse direction included, are not held back.
        Assert.Equal(11_000, links.Deliver(1, 0, 1_000, () => 10_000, random));
        Assert.Equal(11_000, links.Deliver(0, 2, 1_000, () => 10_000, random));
        Assert.Equal(0, links.Retransmissions);
    }

    [Fact]
    public void ALostSegmentIsSentAgainAfterTheRoundTripPlus200MsDoublingOnEachLoss()
    {
        var links = new TcpLinks(2, 0.5);
        // Lost once: resent after 2 × 20 + 200 = 240 ms, then 20 ms on the way.
        Assert.Equal(260_000, links.Deliver(0, 1, 0, () => 20_000, new Draws(0.1, 0.9)));
        // Lost twice, sent at 10 s: 240 + 480 ms of timeouts, then 20 ms.
        Assert.Equal(10_740_000, links.Deliver(0, 1, 10_000_000, () => 20_000, new Draws(0.1, 0.2, 0.9)));
        Assert.Equal(3, links.Retransmissions);
    }

    [Fact]
    public void ALaterMessageWaitsBehindARetransmittedOne()
    {
        var links = new TcpLinks(2, 0.5);
        long first = links.Deliver(0, 1, 0, () => 20_000, new Draws(0.1, 0.9));
        long second = links.Deliver(0, 1, 5_000, () => 20_000, new Draws(0.9));
        Assert.Equal(260_000, first);
        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void OnALossyLinkEveryMessageArrivesInOrder(int seed)
    {
        var links = new TcpLinks(3, 0.3);
        var random = new Random(seed);
        long previous = 0;
        int delayed = 0;
        for (int i = 0; i < 5_000; i++)
        {
            long sent = i * 7_000L;
            long at = links.Deliver(0, 1, sent, () => random.NextInt64(10_000, 50_001), random);
            Assert.True(at >= previous, $"message {i} arrived at {at}, before message {i - 1} at {previous}");
            Assert.True(at >= sent + 10_000, $"message {i} arrived {at - sent} us after it was sent");
            delayed += at - sent >= 210_000 ? 1 : 0;
            previous = at;
        }

        // About 30% of first transmissions are lost; each such message is late by at least 200 ms.
        Assert.InRange(links.Retransmissions, 1_200, 2_300);
        Assert.True(delayed >= 1_200, $"{delayed} messages delayed by a retransmission");
    }

    [Fact]
    public void AMessageIsLateWhenRetransmittedOrHeldBehindOneThatWas()
    {
        var links = new TcpLinks(3, 0.5);
        // Held back behind an earlier message that took longer, no loss: in order, but not late.
        links.Deliver(0, 1, 0, () => 50_000, new Draws(0.9), out bool late);
        Assert.False(late);
        Assert.Equal(50_000, links.Deliver(0, 1, 1_000, () => 10_000, new Draws(0.9), out late));
        Assert.False(late);
        // Lost once: late; the next message on the link waits behind it and is late too.
        Assert.Equal(10_260_000, links.Deliver(0, 1, 10_000_000, () => 20_000, new Draws(0.1, 0.9), out late));
        Assert.True(late);
        Assert.Equal(10_260_000, links.Deliver(0, 1, 10_001_000, () => 20_000, new Draws(0.9), out late));
        Assert.True(late);
        // Another link is not held back.
        Assert.Equal(10_021_000, links.Deliver(0, 2, 10_001_000, () => 20_000, new Draws(0.9), out late));
        Assert.False(late);
    }

    [Theory]
    [InlineData(LossModel.Tcp, 0.0, 0.0)]
    [InlineData(LossModel.Tcp, 0.1, 0.0)]
    [InlineData(LossModel.Tcp, 0.1, 0.3)]
    [InlineData(LossModel.Drop, 0.1, 0.0)]
    public void TheBreakdownAccountsForEveryCopyReceived(LossModel model, double loss, double crash)
    {
        SimulationReport report = new OverlaySimulator(new SimulationOptions { Nodes = 300, Loss = loss, LossModel = model, Crash = crash, Seed = 7 }).Run();
        Assert.Equal(report.LiveNodes, report.Reached);
        PayloadBreakdown b = report.Breakdown!;
        // Every live node but the publisher received one first copy of each record.
        Assert.Equal((report.LiveNodes - 1) / (double)report.LiveNodes, b.FirstByPush + b.FirstByGraft + b.FirstByRepair, 9);
        double duplicates = b.DuplicatePushLateLink + b.DuplicatePushLateSender + b.DuplicatePushOnTime + b.DuplicateGraftAnswer + b.DuplicateRepair;
        Assert.Equal(report.PayloadCopiesPerNode, b.FirstByPush + b.FirstByGraft + b.FirstByRepair + duplicates + b.OnTheWay, 9);
        Assert.True(b.OnTheWay >= 0);
        // Tree changes: each copy a GRAFT brought had its GRAFT, and each PRUNE answered a duplicate
        // that came by push or as a GRAFT answer (a repair's duplicate prunes nothing).
        Assert.True(b.Grafts >= b.FirstByGraft + b.DuplicateGraftAnswer - 1e-9, $"{b.Grafts} GRAFTs for {b.FirstByGraft} + {b.DuplicateGraftAnswer} GRAFT answers");
        Assert.True(b.Prunes <= duplicates - b.DuplicateRepair + 1e-9, $"{b.Prunes} PRUNEs for {duplicates - b.DuplicateRepair} duplicates");
        if (loss > 0)
        {
            Assert.True(b.Grafts > 0 && b.Prunes > 0, "with loss the tree is repaired (GRAFT) and duplicates prune links");
        }

        if (model == LossModel.Drop || loss == 0)
        {
            // Only a retransmission makes a link late.
            Assert.Equal(0, b.DuplicatePushLateLink);
        }
        else
        {
            Assert.True(b.DuplicatePushLateLink > 0, "10% loss on tcp links: some pushes come late after a graft");
            Assert.True(b.FirstByGraft > 0);
        }
    }

    [Fact]
    public void LossOfOneOrMoreIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpLinks(2, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpLinks(2, -0.1));
    }

    [Fact]
    public void OnTcpLinksNoCopyToALiveNodeIsLost()
    {
        SimulationReport report = new OverlaySimulator(new SimulationOptions { Nodes = 300, Loss = 0.2, Seed = 5 }).Run();
        Assert.Equal(300, report.Reached);
        Assert.Equal(report.PayloadSendsPerNode, report.PayloadCopiesPerNode);
    }

    [Fact]
    public void CopiesCountOnlyWhatLiveNodesReceive()
    {
        // Datagram loss: sent copies that were lost are not received copies.
        SimulationReport lossy = new OverlaySimulator(new SimulationOptions { Nodes = 300, Loss = 0.2, LossModel = LossModel.Drop, Seed = 5 }).Run();
        Assert.Equal(300, lossy.Reached);
        Assert.True(lossy.PayloadCopiesPerNode >= 1.0, lossy.Format());
        Assert.True(lossy.PayloadCopiesPerNode < lossy.PayloadSendsPerNode * 0.9, $"received {lossy.PayloadCopiesPerNode}, sent {lossy.PayloadSendsPerNode}");

        // Pushes to crashed nodes are sent, not received.
        SimulationReport crashed = new OverlaySimulator(new SimulationOptions { Nodes = 300, Crash = 0.3, Seed = 5 }).Run();
        Assert.Equal(210, crashed.Reached);
        Assert.True(crashed.PayloadCopiesPerNode >= 1.0, crashed.Format());
        Assert.True(crashed.PayloadCopiesPerNode < crashed.PayloadSendsPerNode, $"received {crashed.PayloadCopiesPerNode}, sent {crashed.PayloadSendsPerNode}");
    }

    [Fact]
    public void TcpIsTheDefaultModel()
    {
        Assert.Equal(LossModel.Tcp, new SimulationOptions().LossModel);
    }

    // Returns the given draws from NextDouble, in order.
    private sealed class Draws(params double[] values) : Random
    {
        private int _next;

        public override double NextDouble() => values[_next++];
    }
}
