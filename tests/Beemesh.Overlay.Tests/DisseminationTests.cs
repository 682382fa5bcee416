using Beemesh.Overlay.Records;
using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

public sealed class DisseminationTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.2)]
    public void EveryLiveNodeGetsEveryRecordAtAThousandNodes(double loss)
    {
        SimulationReport report = new OverlaySimulator(new SimulationOptions { Nodes = 1000, Loss = loss, Seed = 11 }).Run();
        Assert.Equal(1000, report.LiveNodes);
        Assert.Equal(1000, report.Reached);
        Assert.All(report.Seconds, s => Assert.NotNull(s));
        // Generous bound: the tight numbers are the benchmark's.
        Assert.True(report.Seconds[^1] < 30, report.Format());
    }

    [Fact]
    public void WithoutLossTheTreeCarriesRecordsWithFewDuplicates()
    {
        var sim = new OverlaySimulator(new SimulationOptions { Nodes = 1000, Seed = 4 });
        SimulationReport report = sim.Run();
        Assert.Equal(1000, report.Reached);
        Assert.True(report.PayloadCopiesPerNode < 1.5, report.Format());
        // After pruning, the eager links form a tree or close to one: about 2 per node, not 5.
        double eager = sim.Nodes.Average(n => n.EagerPeers.Count());
        Assert.InRange(eager, 1.5, 3.0);
        // ...and they span nearly all of the overlay. One eager set serves every origin, so a
        // duplicate from one origin's broadcast may prune a link another origin's tree used; the
        // few nodes cut off that way are reached by IHAVE and GRAFT, which re-adds the link.
        var neighbours = new List<int>[1000];
        for (int i = 0; i < 1000; i++)
        {
            neighbours[i] ??= [];
            foreach (PeerAddress p in sim.Nodes[i].EagerPeers)
            {
                int j = (int)p.Id - 1;
                neighbours[i].Add(j);
                (neighbours[j] ??= []).Add(i);
            }
        }

        var seen = new bool[1000];
        var queue = new Queue<int>([0]);
        seen[0] = true;
        while (queue.TryDequeue(out int u))
        {
            foreach (int v in neighbours[u].Where(v => !seen[v]))
            {
                seen[v] = true;
                queue.Enqueue(v);
            }
        }

        Assert.True(seen.Count(x => x) >= 950, $"{seen.Count(x => x)} of 1000 nodes on the eager tree");
    }

    [Fact]
    public void TreeIsRepairedAfterCrashesCutIt()
    {
        var sim = new OverlaySimulator(new SimulationOptions { Nodes = 600, Seed = 9 });
        sim.JoinAll();
        sim.RunUntil(sim.Now + 5_000_000);
        sim.Publish(0, new RecordContent(RecordKind.Node, "tree", new byte[8]));
        sim.RunUntil(sim.Now + 2_000_000);
        sim.CrashRandom(0.3);
        int publisher = Enumerable.Range(0, 600).First(i => !sim.IsCrashed(i));
        OverlayRecord record = sim.Publish(publisher, new RecordContent(RecordKind.Policy, "after-crash", new byte[8]));
        sim.RunUntil(sim.Now + 30_000_000);
        for (int i = 0; i < 600; i++)
        {
            if (!sim.IsCrashed(i))
            {
                Assert.Equal(record.Version, sim.Nodes[i].Store.Get(record.Slot)?.Version);
            }
        }
    }

    [Fact]
    public void PartitionedNodesCatchUpAfterTheHeal()
    {
        SimulationReport report = new OverlaySimulator(new SimulationOptions { Nodes = 500, Partition = 0.2, Seed = 2 }).Run();
        Assert.Equal(500, report.Reached);
    }

    [Fact]
    public void LazyLinksAnnounceAndAMissingRecordIsGrafted()
    {
        var options = new OverlayOptions();
        var net = new LocalNetwork(2, options);
        net.StartAll();
        net[1].Step(net[2].Self, OverlayMessage.Prune, net.Now);
        net[2].Step(net[1].Self, OverlayMessage.Prune, net.Now);
        Assert.Empty(net[1].EagerPeers);

        OverlayRecord record = net[1].Publish(new RecordContent(RecordKind.Policy, "p", new byte[] { 1 }), net.Now);
        Assert.DoesNotContain(net[1].Outbox, m => m.Message.Type == OverlayMessageType.Gossip);
        // The IHAVE waits for the batch; then node 2 waits for an eager copy before it grafts.
        net.Run(options.LazyFlushInterval + options.GraftTimeout + 100_000, 10_000);
        Assert.Equal(record.Version, net[2].Store.Get(record.Slot)!.Version);
        Assert.Contains(net[1].Self, net[2].EagerPeers);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    public void ANewRouteIsPushedAlongTheTreeAtOnceWithNoTimerBetween(int nodes)
    {
        // A settled mesh: links up, keepalives exchanged, a record from every node so duplicates
        // have pruned the tree down to its eager links.
        var net = new LocalNetwork(nodes);
        net.StartAll();
        net.Run(3_000_000);
        for (int i = 1; i <= nodes; i++)
        {
            net[i].Publish(new RecordContent(RecordKind.Node, $"n{i}", new byte[] { 1 }, Leased: true), net.Now);
            net.Deliver();
        }

        net.Run(1_000_000);
        // A route published now reaches every node by eager pushes alone: the clock does not move,
        // no node ticks, so an IHAVE batch, a graft or a digest exchange cannot be what brings it.
        OverlayRecord route = net[nodes].Publish(new RecordContent(RecordKind.Route, $"n{nodes}/w1", new byte[] { 2 }, Leased: true), net.Now);
        Assert.Contains(net[nodes].Outbox, m => m.Message.Type == OverlayMessageType.Gossip && m.Message.Record?.Id == route.Id);
        net.Deliver();
        Assert.All(net.All, n => Assert.Equal(route.Version, n.Store.Get(route.Slot)?.Version));
    }

}
