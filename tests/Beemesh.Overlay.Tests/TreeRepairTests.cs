using Beemesh.Overlay.Records;
using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

/// <summary>
/// One node driven by hand: a copy lost on a tree link is grafted back along that link, soon,
/// instead of through a lazy link (each such graft adds a link to the tree and a duplicate to
/// later records).
/// </summary>
public sealed class TreeRepairTests
{
    private static readonly OverlayOptions Options = new();

    private static PeerAddress P(int id) => new((ulong)id);

    private readonly SimulationSignature _signature = new(42);

    /// <summary>Node 1 with active neighbours 2..(1+active), all on tree (eager) links; the peers listed in <paramref name="lazy"/> pruned theirs.</summary>
    private OverlayNode Node(int active, params int[] lazy)
    {
        var node = new OverlayNode(P(1), Options, new Random(3), _signature, _signature);
        node.Start([], 0);
        for (int i = 0; i < active; i++)
        {
            node.Step(P(2 + i), new OverlayMessage(OverlayMessageType.Neighbor, P(2 + i), flag: true), 0);
        }

        foreach (int peer in lazy)
        {
            node.Step(P(peer), OverlayMessage.Prune, 0);
        }

        node.ClearOutbox();
        Assert.Equal(Enumerable.Range(2, active).Except(lazy).Select(P).OrderBy(p => p.Id), node.EagerPeers.OrderBy(p => p.Id));
        return node;
    }

    /// <summary>A record published elsewhere, for the node to miss.</summary>
    private OverlayRecord Foreign(string key)
    {
        var other = new OverlayNode(P(99), Options, new Random(4), _signature, _signature);
        other.Start([], 0);
        return other.Publish(new RecordContent(RecordKind.Policy, key, new byte[] { 1 }), 0);
    }

    /// <summary>Runs the node's timers through <paramref name="until"/> and returns what it sent, with what was in its outbox.</summary>
    private static List<OutboundMessage> RunTo(OverlayNode node, long until)
    {
        while (node.NextDeadline <= until)
        {
            node.Tick(node.NextDeadline);
        }

        var sent = node.Outbox.ToList();
        node.ClearOutbox();
        return sent;
    }

    private static IEnumerable<PeerAddress> To(IEnumerable<OutboundMessage> sent, OverlayMessageType type, RecordId id) =>
        sent.Where(m => m.Message.Type == type && m.Message.Ids.Contains(id)).Select(m => m.To);

    [Fact]
    public void APushOnATreeLinkIsAnnouncedOnItToo()
    {
        OverlayNode node = Node(active: 3, lazy: 4);
        OverlayRecord record = node.Publish(new RecordContent(RecordKind.Policy, "p", new byte[] { 1 }), 0);
        Assert.Equal([P(2), P(3)], node.Outbox.Where(m => m.Message.Type == OverlayMessageType.Gossip).Select(m => m.To).OrderBy(p => p.Id));
        node.ClearOutbox();
        // The flush is the next timer (not the heartbeat, whose re-announcement would go on every link too).
        Assert.Equal(Options.LazyFlushInterval, node.NextDeadline);
        List<OutboundMessage> sent = RunTo(node, Options.LazyFlushInterval);
        // Every neighbour gets the IHAVE: the lazy one as before, the tree ones beside their copy.
        Assert.Equal([P(2), P(3), P(4)], To(sent, OverlayMessageType.IHave, record.Id).OrderBy(p => p.Id));
    }

    [Fact]
    public void AnIHaveFromATreeNeighbourIsGraftedFromItSoonAndFirst()
    {
        OverlayNode node = Node(active: 3, lazy: 3);
        OverlayRecord record = Foreign("p");
        // Lazy neighbour 3 announces first; then tree neighbour 2, whose copy never came.
        node.Step(P(3), new OverlayMessage(OverlayMessageType.IHave, ids: [record.Id]), 1_000);
        node.Step(P(2), new OverlayMessage(OverlayMessageType.IHave, ids: [record.Id]), 2_000);
        Assert.Empty(To(RunTo(node, 2_000 + Options.TreeGraftTimeout - 1), OverlayMessageType.Graft, record.Id));
        List<OutboundMessage> sent = RunTo(node, 2_000 + Options.TreeGraftTimeout);
        Assert.Equal([P(2)], To(sent, OverlayMessageType.Graft, record.Id));
        // The GRAFT went along the tree: neighbour 3's link stays lazy.
        Assert.DoesNotContain(P(3), node.EagerPeers);
    }

    [Fact]
    public void AnIHaveFromALazyNeighbourWaitsTheGraftTimeout()
    {
        OverlayNode node = Node(active: 3, lazy: 3);
        OverlayRecord record = Foreign("p");
        node.Step(P(3), new OverlayMessage(OverlayMessageType.IHave, ids: [record.Id]), 1_000);
        Assert.Empty(To(RunTo(node, 1_000 + Options.GraftTimeout - 1), OverlayMessageType.Graft, record.Id));
        Assert.Equal([P(3)], To(RunTo(node, 1_000 + Options.GraftTimeout), OverlayMessageType.Graft, record.Id));
    }
    [Fact]
    public void ACopyThatCameAnotherWayIsAnnouncedNotPushedToTheOriginsUpstreamNeighbour()
    {
        OverlayNode node = Node(active: 4);
        var origin = new OverlayNode(P(99), Options, new Random(4), _signature, _signature);
        origin.Start([], 0);
        OverlayRecord first = origin.Publish(new RecordContent(RecordKind.Policy, "a", new byte[] { 1 }), 0);
        OverlayRecord second = origin.Publish(new RecordContent(RecordKind.Policy, "b", new byte[] { 2 }), 1);
        var other = new OverlayNode(P(98), Options, new Random(5), _signature, _signature);
        other.Start([], 0);
        OverlayRecord elsewhere = other.Publish(new RecordContent(RecordKind.Policy, "c", new byte[] { 3 }), 0);

        // Tree neighbour 2 pushes the origin's first record: the node pushes it on to the others.
        node.Step(P(2), OverlayMessage.Gossip(first), 1_000);
        Assert.Equal([P(3), P(4), P(5)], To(node.Outbox, first).OrderBy(p => p.Id));
        RunTo(node, 1_000 + Options.LazyFlushInterval);

        // The origin's next record comes from neighbour 3 (a GRAFT answer, say) while neighbour 2's
        // push of it is held up: neighbour 2 gets the IHAVE alone, the others the copy.
        node.Step(P(3), OverlayMessage.Gossip(second), 200_000);
        Assert.Equal([P(4), P(5)], To(node.Outbox, second).OrderBy(p => p.Id));
        List<OutboundMessage> sent = RunTo(node, 200_000 + Options.LazyFlushInterval);
        Assert.Contains(P(2), To(sent, OverlayMessageType.IHave, second.Id));

        // The rule is per origin: another origin's record from neighbour 3 is pushed to neighbour 2.
        node.Step(P(3), OverlayMessage.Gossip(elsewhere), 300_000);
        Assert.Equal([P(2), P(4), P(5)], To(node.Outbox, elsewhere).OrderBy(p => p.Id));
    }

    private static IEnumerable<PeerAddress> To(IEnumerable<OutboundMessage> sent, OverlayRecord record) =>
        sent.Where(m => m.Message.Type == OverlayMessageType.Gossip && m.Message.Record == record).Select(m => m.To);
}
