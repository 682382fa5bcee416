using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

public sealed class MembershipTests
{
    private static OverlaySimulator Settled(int nodes, int seed, double seconds = 20)
    {
        var sim = new OverlaySimulator(new SimulationOptions { Nodes = nodes, Seed = seed });
        sim.JoinAll();
        sim.RunUntil(sim.Now + (long)(seconds * 1_000_000));
        return sim;
    }

    private static int Index(PeerAddress p) => (int)p.Id - 1;

    private static int Reachable(OverlaySimulator sim, int from)
    {
        var seen = new bool[sim.Nodes.Count];
        var queue = new Queue<int>([from]);
        seen[from] = true;
        int count = 1;
        while (queue.TryDequeue(out int u))
        {
            foreach (PeerAddress p in sim.Nodes[u].ActiveView)
            {
                int v = Index(p);
                if (!seen[v] && !sim.IsCrashed(v))
                {
                    seen[v] = true;
                    count++;
                    queue.Enqueue(v);
                }
            }
        }

        return count;
    }

    [Fact]
    public void ViewsAreBoundedSymmetricAndConnectedAfterQuiescence()
    {
        OverlaySimulator sim = Settled(500, seed: 3);
        var options = new OverlayOptions();
        foreach (OverlayNode node in sim.Nodes)
        {
            Assert.InRange(node.ActiveCount, 1, options.ActiveViewSize);
            Assert.True(node.PassiveView.Count <= options.PassiveViewSize);
            Assert.DoesNotContain(node.Self, node.ActiveView);
            Assert.Empty(node.ActiveView.Intersect(node.PassiveView));
            foreach (PeerAddress peer in node.ActiveView)
            {
                Assert.True(sim.Nodes[Index(peer)].IsActive(node.Self), $"{node.Self} has {peer} active but not the other way round");
            }
        }

        Assert.Equal(500, Reachable(sim, 0));
        Assert.True(sim.Nodes.Average(n => n.ActiveCount) >= 4.5, "active views should be nearly full");
        Assert.Equal(0, sim.FalseSuspicions);
    }

    [Fact]
    public void ActiveViewsRefillAfterCrashes()
    {
        OverlaySimulator sim = Settled(500, seed: 5, seconds: 10);
        sim.CrashRandom(0.2);
        sim.RunUntil(sim.Now + 20_000_000);
        var live = Enumerable.Range(0, 500).Where(i => !sim.IsCrashed(i)).ToArray();
        foreach (int i in live)
        {
            OverlayNode node = sim.Nodes[i];
            Assert.DoesNotContain(node.ActiveView, p => sim.IsCrashed(Index(p)));
            Assert.True(node.ActiveCount >= 2, $"node {i} kept only {node.ActiveCount} neighbours");
        }

        Assert.True(live.Average(i => sim.Nodes[i].ActiveCount) >= 4.5);
        Assert.Equal(live.Length, Reachable(sim, live[0]));
        Assert.Equal(0, sim.FalseSuspicions);
    }

    [Fact]
    public void JoinMakesASymmetricLinkAndSharesCandidates()
    {
        var net = new LocalNetwork(3);
        net.StartAll();
        Assert.True(net[1].IsActive(net[2].Self) && net[2].IsActive(net[1].Self));
        Assert.True(net[3].IsActive(net[1].Self) && net[1].IsActive(net[3].Self));
        // Node 3's join walked from node 1 to node 2, which took it as a neighbour too.
        Assert.True(net[3].IsActive(net[2].Self) && net[2].IsActive(net[3].Self));
    }

    [Fact]
    public void LowPriorityNeighborIsRefusedByAFullViewAndHighPriorityIsNot()
    {
        var options = new OverlayOptions { ActiveViewSize = 2 };
        var net = new LocalNetwork(5, options);
        net.StartAll();
        OverlayNode full = net.All.First(n => n.ActiveCount == 2);
        OverlayNode asker = net.All.First(n => !n.IsActive(full.Self) && n != full);
        full.Step(asker.Self, new OverlayMessage(OverlayMessageType.Neighbor, asker.Self, flag: false), net.Now);
        Assert.False(full.IsActive(asker.Self));
        Assert.Contains(full.Outbox, m => m.To == asker.Self && m.Message.Type == OverlayMessageType.NeighborReply && !m.Message.Flag);
        full.ClearOutbox();
        full.Step(asker.Self, new OverlayMessage(OverlayMessageType.Neighbor, asker.Self, flag: true), net.Now);
        Assert.True(full.IsActive(asker.Self));
        Assert.Equal(2, full.ActiveCount);
        // The neighbour it dropped was told so.
        Assert.Contains(full.Outbox, m => m.Message.Type == OverlayMessageType.Disconnect);
    }

    [Fact]
    public void DisconnectMovesThePeerToThePassiveView()
    {
        var net = new LocalNetwork(2);
        net.StartAll();
        net[1].Step(net[2].Self, OverlayMessage.Disconnect, net.Now);
        Assert.False(net[1].IsActive(net[2].Self));
        Assert.Contains(net[2].Self, net[1].PassiveView);
    }

    [Fact]
    public void SilentNeighbourIsProbedThroughOthersAndEvictedOnlyWhenNoOneAnswers()
    {
        var net = new LocalNetwork(4);
        net.StartAll();
        net.Run(2_000_000);
        Assert.True(net[1].IsActive(net[4].Self));

        // The direct link 1-4 loses everything; 4 is alive and answers the probes sent through 2 and 3.
        net.Drop = (from, to, _) => (from == 1 && to == 4) || (from == 4 && to == 1);
        net.Run(10_000_000);
        Assert.Empty(net.Observer.Evicted);

        // Now node 4 is gone for everyone.
        net.Drop = (from, to, _) => from == 4 || to == 4;
        net.Run(10_000_000);
        Assert.Contains((1UL, 4UL), net.Observer.Evicted);
        Assert.False(net[1].IsActive(net[4].Self));
    }

    [Fact]
    public void ASilentNeighbourIsSuspectedBeforeItIsEvicted()
    {
        var net = new LocalNetwork(4);
        net.StartAll();
        net.Run(2_000_000);
        Assert.True(net[1].IsActive(net[4].Self));
        Assert.False(net[1].IsSuspected(net[4].Self.Id));

        net.Drop = (from, to, _) => from == 4 || to == 4;
        bool suspectedBeforeEviction = false;
        for (int i = 0; i < 200 && !net.Observer.Evicted.Contains((1UL, 4UL)); i++)
        {
            net.Run(100_000);
            suspectedBeforeEviction |= net[1].IsSuspected(net[4].Self.Id) && !net.Observer.Evicted.Contains((1UL, 4UL));
        }

        Assert.True(suspectedBeforeEviction);
        Assert.Contains((1UL, 4UL), net.Observer.Evicted);
        Assert.False(net[1].IsSuspected(net[4].Self.Id));
    }

    [Fact]
    public void ALateHeartbeatWidensTimeouts()
    {
        var net = new LocalNetwork(2);
        net.StartAll();
        Assert.Equal(0, net[1].LocalHealth);
        // The host did not run the node for 3 s: its own slowness, not its peers'.
        net.Now += 3_000_000;
        net[1].Tick(net.Now);
        Assert.Equal(1, net[1].LocalHealth);
        net.Deliver();
        net.Run(5_000_000);
        Assert.Equal(0, net[1].LocalHealth);
    }
}
