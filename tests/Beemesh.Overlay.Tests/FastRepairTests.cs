using Beemesh.Overlay.Records;
using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

/// <summary>
/// One node driven by hand on its own clock: isolation links, silent tree links, re-announcement
/// in place of keepalives, JOIN fan-out and holders left out of the push.
/// </summary>
public sealed class FastRepairTests
{
    private static readonly OverlayOptions Options = new();

    private static PeerAddress P(int id) => new((ulong)id);

    private readonly SimulationSignature _signature = new(42);
    private readonly RecordingObserver _observer = new();

    /// <summary>Node 1 with active neighbours 2..(1+active) and passive peers 10..(9+passive), all heard at time 0.</summary>
    private OverlayNode Node(int active, int passive)
    {
        var node = new OverlayNode(P(1), Options, new Random(3), _signature, _signature, _observer);
        node.Start([], 0);
        for (int i = 0; i < active; i++)
        {
            node.Step(P(2 + i), new OverlayMessage(OverlayMessageType.Neighbor, P(2 + i), flag: true), 0);
        }

        node.Step(P(2), new OverlayMessage(OverlayMessageType.ShuffleReply, peers: [.. Enumerable.Range(10, passive).Select(P)]), 0);
        node.ClearOutbox();
        Assert.Equal(active, node.ActiveCount);
        Assert.Equal(passive, node.PassiveView.Count);
        return node;
    }

    /// <summary>Runs the node's timers up to <paramref name="until"/>; <paramref name="heard"/> peers send a keepalive every 400 ms.</summary>
    private static List<OutboundMessage> RunTo(OverlayNode node, long from, long until, params int[] heard)
    {
        var sent = new List<OutboundMessage>();
        for (long t = from; t <= until; t += 400_000)
        {
            foreach (int peer in heard)
            {
                node.Step(P(peer), OverlayMessage.Ping, t);
            }

            long end = Math.Min(t + 400_000, until + 1);
            while (node.NextDeadline < end)
            {
                node.Tick(node.NextDeadline);
            }

            sent.AddRange(node.Outbox);
            node.ClearOutbox();
        }

        return sent;
    }

    private static IEnumerable<OutboundMessage> Neighbors(IEnumerable<OutboundMessage> sent) =>
        sent.Where(m => m.Message.Type == OverlayMessageType.Neighbor);

    [Fact]
    public void ANodeWhoseNeighboursAllButOneFellSilentAsksPassivePeersAtOnceWithoutEvicting()
    {
        OverlayNode node = Node(active: 5, passive: 6);
        node.Publish(new RecordContent(RecordKind.Policy, "held", new byte[] { 1 }), 0);
        node.ClearOutbox();
        // Only neighbour 2 keeps talking; 3-6 fall silent. Well before the suspect timeout (3 s)...
        long now = Options.SilenceThreshold + (Options.IsolationRetryInterval / 2);
        List<OutboundMessage> sent = RunTo(node, 0, now, heard: 2);
        OutboundMessage[] asks = [.. Neighbors(sent)];
        // ...the node has asked IsolationNeighbors passive peers, with high priority.
        Assert.Equal(Options.IsolationNeighbors, asks.Length);
        Assert.All(asks, m => Assert.True(m.To.Id >= 10 && m.Message.Flag));
        Assert.Empty(_observer.Evicted);
        Assert.Equal(5, node.ActiveCount);

        // The candidates accept: the view grows past its size, nobody is dropped for them.
        foreach (OutboundMessage ask in asks)
        {
            node.Step(ask.To, new OverlayMessage(OverlayMessageType.NeighborReply, ask.To, flag: true), now);
        }

        Assert.Equal(5 + Options.IsolationNeighbors, node.ActiveCount);
        Assert.DoesNotContain(node.Outbox, m => m.Message.Type == OverlayMessageType.Disconnect);
        // The new links start with a digest exchange, which brings the records missed meanwhile.
        Assert.All(asks, a => Assert.Contains(node.Outbox, m => m.To == a.To && m.Message.Type == OverlayMessageType.Digest));
        node.ClearOutbox();

        // The silent ones are evicted by failure detection; then the view is back within its size.
        int[] talking = [2, .. asks.Select(a => (int)a.To.Id)];
        RunTo(node, now, now + Options.SuspectTimeout + Options.ProbeTimeout + (2 * Options.KeepaliveInterval), talking);
        Assert.Equal(4, _observer.Evicted.Count);
        Assert.InRange(node.ActiveCount, 3, Options.ActiveViewSize);
    }

    [Fact]
    public void ACutOffNodeWithNoPassivePeerAsksItsContactsInstead()
    {
        var node = new OverlayNode(P(1), Options, new Random(3), _signature, _signature, _observer);
        node.Start([P(7), P(8)], 0);
        for (int i = 2; i <= 4; i++)
        {
            node.Step(P(i), new OverlayMessage(OverlayMessageType.Neighbor, P(i), flag: true), 0);
        }

        node.ClearOutbox();
        Assert.Empty(node.PassiveView);
        // Only neighbour 2 keeps talking: the node is cut off and has no passive peer to ask.
        List<OutboundMessage> sent = RunTo(node, 0, Options.SilenceThreshold + (Options.IsolationRetryInterval / 2), heard: 2);
        OutboundMessage[] asks = [.. Neighbors(sent)];
        Assert.Equal([P(7), P(8)], asks.Select(m => m.To).OrderBy(p => p.Id));
        Assert.All(asks, m => Assert.True(m.Message.Flag));
        Assert.Empty(_observer.Evicted);
    }

    [Fact]
    public void TwoNeighboursHeardMeansNotCutOff()
    {
        OverlayNode node = Node(active: 5, passive: 6);
        List<OutboundMessage> sent = RunTo(node, 0, Options.SuspectTimeout - 1, heard: [2, 3]);
        Assert.Empty(Neighbors(sent));
    }

    [Fact]
    public void WhileStillCutOffMoreCandidatesAreAskedBeforeTheNeighborTimeout()
    {
        OverlayNode node = Node(active: 5, passive: 8);
        // No one answers, neither the old neighbours nor the candidates (dead too).
        List<OutboundMessage> sent = RunTo(node, 0, Options.SilenceThreshold + Options.NeighborTimeout - 1);
        int asked = Neighbors(sent).Select(m => m.To).Distinct().Count();
        Assert.True(asked > Options.IsolationNeighbors, "a second round should go out before the first candidates time out");
        Assert.True(asked <= 3 * Options.IsolationNeighbors, $"{asked} candidates asked at once");
    }

    [Fact]
    public void ATrimBringsAnOverfullViewBackOnceNoNeighbourIsSilent()
    {
        OverlayNode node = Node(active: 5, passive: 6);
        long now = Options.SilenceThreshold + (Options.IsolationRetryInterval / 2);
        foreach (OutboundMessage ask in Neighbors(RunTo(node, 0, now, heard: 2)))
        {
            node.Step(ask.To, new OverlayMessage(OverlayMessageType.NeighborReply, ask.To, flag: true), now);
        }

        Assert.Equal(7, node.ActiveCount);
        node.ClearOutbox();
        // The silent neighbours were only slow: everyone talks again, and the extra links go.
        int[] all = [.. node.ActiveView.Select(p => (int)p.Id)];
        List<OutboundMessage> sent = RunTo(node, now, now + (2 * Options.KeepaliveInterval), all);
        Assert.Equal(Options.ActiveViewSize, node.ActiveCount);
        // Two links closed (their peers, still pinging here, are told again each time).
        PeerAddress[] closed = [.. sent.Where(m => m.Message.Type == OverlayMessageType.Disconnect).Select(m => m.To).Distinct()];
        Assert.Equal(2, closed.Length);
        Assert.All(closed, p => Assert.False(node.IsActive(p)));
        Assert.Empty(_observer.Evicted);
    }

    [Fact]
    public void ASilentTreeLinkGetsAnIHaveInsteadOfThePayload()
    {
        OverlayNode node = Node(active: 3, passive: 0);
        long now = Options.SilenceThreshold + 1;
        RunTo(node, 0, now, heard: [2, 3]);
        Assert.All(node.ActiveView, p => Assert.Contains(p, node.EagerPeers));
        OverlayRecord record = node.Publish(new RecordContent(RecordKind.Policy, "p", new byte[] { 1 }), now);
        Assert.Contains(node.Outbox, m => m.To == P(2) && m.Message.Type == OverlayMessageType.Gossip);
        Assert.Contains(node.Outbox, m => m.To == P(3) && m.Message.Type == OverlayMessageType.Gossip);
        Assert.DoesNotContain(node.Outbox, m => m.To == P(4) && m.Message.Type == OverlayMessageType.Gossip);
        node.ClearOutbox();
        node.Tick(now + Options.LazyFlushInterval);
        Assert.Contains(node.Outbox, m => m.To == P(4) && m.Message.Type == OverlayMessageType.IHave && m.Message.Ids.Contains(record.Id));
    }

    [Fact]
    public void TheHeartbeatReannouncesRecentRecordsOnEveryLinkInPlaceOfAKeepalive()
    {
        OverlayNode node = Node(active: 3, passive: 0);
        OverlayRecord record = node.Publish(new RecordContent(RecordKind.Policy, "p", new byte[] { 1 }), 0);
        node.ClearOutbox();
        List<OutboundMessage> sent = RunTo(node, 0, Options.KeepaliveInterval, heard: [2, 3, 4]);
        foreach (int peer in new[] { 2, 3, 4 })
        {
            Assert.Contains(sent, m => m.To == P(peer) && m.Message.Type == OverlayMessageType.IHave && m.Message.Ids.Contains(record.Id));
        }

        Assert.DoesNotContain(sent, m => m.Message.Type == OverlayMessageType.Ping);
        // Once only: the next heartbeats are plain keepalives.
        sent = RunTo(node, Options.KeepaliveInterval + 1, 3 * Options.KeepaliveInterval, heard: [2, 3, 4]);
        Assert.DoesNotContain(sent, m => m.Message.Type == OverlayMessageType.IHave);
        Assert.Contains(sent, m => m.Message.Type == OverlayMessageType.Ping);
    }

    [Fact]
    public void ALostPushIsRecoveredFromTheReannouncement()
    {
        // No periodic digest exchange within the test: only the re-announcement can repair.
        var net = new LocalNetwork(2, Options with { AntiEntropyInterval = 60_000_000 });
        net.StartAll();
        net.Run(2_000_000);
        OverlayRecord? lost = null;
        // The copy and the IHAVE that announces it on the tree link are both lost.
        net.Drop = (_, _, m) => (m.Type == OverlayMessageType.Gossip && m.Record == lost)
            || (m.Type == OverlayMessageType.IHave && lost is not null && m.Ids.Contains(lost.Id));
        lost = net[1].Publish(new RecordContent(RecordKind.Policy, "p", new byte[] { 1 }), net.Now);
        net.Deliver();
        net.Run(Options.LazyFlushInterval, Options.LazyFlushInterval);
        Assert.Null(net[2].Store.Get(lost.Slot));
        net.Drop = null;
        // Node 2's only neighbour pushed it eagerly and the push was lost; the next heartbeat tells it.
        net.Run(Options.KeepaliveInterval + Options.GraftTimeout + 200_000, 10_000);
        Assert.Equal(lost.Version, net[2].Store.Get(lost.Slot)?.Version);
    }

    [Fact]
    public void AnUnansweredJoinIsRetriedThroughTwoContactsAtOnce()
    {
        var node = new OverlayNode(P(1), Options, new Random(3), _signature, _signature);
        node.Start([P(7), P(8), P(9)], 0);
        Assert.Equal([P(7)], node.Outbox.Where(m => m.Message.Type == OverlayMessageType.Join).Select(m => m.To));
        node.ClearOutbox();
        // No answer: the next two are tried together, and then the two after.
        node.Tick(Options.JoinTimeout);
        Assert.Equal([P(8), P(9)], node.Outbox.Where(m => m.Message.Type == OverlayMessageType.Join).Select(m => m.To));
        node.ClearOutbox();
        node.Tick(2 * Options.JoinTimeout);
        Assert.Equal([P(7), P(8)], node.Outbox.Where(m => m.Message.Type == OverlayMessageType.Join).Select(m => m.To));
    }

    [Fact]
    public void NeighboursThatAnnouncedARecordGetNoCopyOfIt()
    {
        OverlayNode node = Node(active: 4, passive: 0);
        var other = new OverlayNode(P(9), Options, new Random(4), _signature, _signature);
        other.Start([], 0);
        OverlayRecord record = other.Publish(new RecordContent(RecordKind.Policy, "p", new byte[] { 1 }), 0);
        // Neighbour 3 announced it; then neighbour 2 pushes it.
        node.Step(P(3), new OverlayMessage(OverlayMessageType.IHave, ids: [record.Id]), 10);
        node.Step(P(2), OverlayMessage.Gossip(record), 20);
        Assert.Equal(record.Version, node.Store.Get(record.Slot)?.Version);
        Assert.Contains(node.Outbox, m => m.To == P(4) && m.Message.Type == OverlayMessageType.Gossip);
        Assert.Contains(node.Outbox, m => m.To == P(5) && m.Message.Type == OverlayMessageType.Gossip);
        Assert.DoesNotContain(node.Outbox, m => (m.To == P(2) || m.To == P(3)) && m.Message.Type == OverlayMessageType.Gossip);
        node.ClearOutbox();
        node.Tick(20 + Options.LazyFlushInterval);
        Assert.DoesNotContain(node.Outbox, m => m.To == P(3) && m.Message.Type == OverlayMessageType.IHave);
    }
}
