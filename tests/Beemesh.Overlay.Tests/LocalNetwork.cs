using Beemesh.Overlay.Records;
using Beemesh.Overlay.Simulation;

namespace Beemesh.Overlay.Tests;

/// <summary>A handful of nodes wired by hand: messages are delivered in order, instantly, until none is left.</summary>
internal sealed class LocalNetwork
{
    private readonly Dictionary<ulong, OverlayNode> _nodes = [];

    public LocalNetwork(int count, OverlayOptions? options = null, int seed = 7)
    {
        Signature = new SimulationSignature(42);
        for (int i = 1; i <= count; i++)
        {
            _nodes[(ulong)i] = new OverlayNode(new PeerAddress((ulong)i), options ?? new OverlayOptions(), new Random(seed + i), Signature, Signature, Observer);
        }
    }

    public SimulationSignature Signature { get; }

    public RecordingObserver Observer { get; } = new();

    public long Now { get; set; }

    /// <summary>Messages dropped instead of delivered while this returns true.</summary>
    public Func<ulong, ulong, OverlayMessage, bool>? Drop { get; set; }

    public OverlayNode this[int id] => _nodes[(ulong)id];

    public IEnumerable<OverlayNode> All => _nodes.Values;

    /// <summary>Delivers every queued message (and what they cause) until the network is quiet.</summary>
    public int Deliver()
    {
        int delivered = 0;
        bool any = true;
        while (any)
        {
            any = false;
            foreach (OverlayNode node in _nodes.Values)
            {
                if (node.Outbox.Count == 0)
                {
                    continue;
                }

                OutboundMessage[] batch = [.. node.Outbox];
                node.ClearOutbox();
                foreach (OutboundMessage m in batch)
                {
                    any = true;
                    if (_nodes.TryGetValue(m.To.Id, out OverlayNode? to) && Drop?.Invoke(node.Self.Id, m.To.Id, m.Message) != true)
                    {
                        to.Step(node.Self, m.Message, Now);
                        delivered++;
                    }
                }
            }
        }

        return delivered;
    }

    /// <summary>Advances time in steps of <paramref name="step"/>, ticking every node and delivering.</summary>
    public void Run(long duration, long step = 100_000)
    {
        long end = Now + duration;
        while (Now < end)
        {
            Now += step;
            foreach (OverlayNode node in _nodes.Values)
            {
                if (node.NextDeadline <= Now)
                {
                    node.Tick(Now);
                }
            }

            Deliver();
        }
    }

    /// <summary>Starts node 1 alone and the others through node 1.</summary>
    public void StartAll()
    {
        this[1].Start([], Now);
        foreach (OverlayNode node in _nodes.Values.Where(n => n.Self.Id != 1))
        {
            node.Start([new PeerAddress(1)], Now);
            Deliver();
        }
    }
}

/// <summary>Records what nodes report.</summary>
internal sealed class RecordingObserver : IOverlayObserver
{
    public List<(ulong Node, RecordRefusal Reason)> Refused { get; } = [];

    public List<(ulong Node, OverlayRecord Record)> Accepted { get; } = [];

    public int Duplicates { get; private set; }

    public List<(ulong Node, ulong Peer)> Evicted { get; } = [];

    public void RecordAccepted(OverlayNode node, OverlayRecord record, long now) => Accepted.Add((node.Self.Id, record));

    public void RecordRefused(OverlayNode node, PeerAddress from, OverlayRecord record, RecordRefusal reason, long now) => Refused.Add((node.Self.Id, reason));

    public void Duplicate(OverlayNode node, PeerAddress from, OverlayRecord record, long now) => Duplicates++;

    public void PeerEvicted(OverlayNode node, PeerAddress peer, long now) => Evicted.Add((node.Self.Id, peer.Id));
}
