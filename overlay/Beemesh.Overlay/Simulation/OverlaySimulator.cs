using Beemesh.Overlay.Records;

namespace Beemesh.Overlay.Simulation;

/// <summary>
/// A discrete-event network for the real <see cref="OverlayNode"/> class: one event queue ordered
/// by time (ties by insertion order), per-message latency drawn between the bounds, loss on TCP
/// links (<see cref="TcpLinks"/>: a lost segment is sent again, order kept per link) or, with
/// <see cref="LossModel.Drop"/>, messages lost outright, crashes and a partition. A message to a
/// crashed node, or across the partition while it lasts, is lost (its connection would time out). Every random choice comes from the seed (the network's own
/// <see cref="Random"/> and one per node derived from it), so a seed always gives the same run.
/// </summary>
public sealed class OverlaySimulator : IOverlayObserver
{
    private const byte MessageEvent = 0;
    private const byte TickEvent = 1;
    private const byte StartEvent = 2;

    // Why a measured payload copy was sent (see PayloadBreakdown).
    private const byte NoCause = 0;
    private const byte PushCause = 1;
    private const byte GraftAnswerCause = 2;
    private const byte RepairCause = 3;

    // Per node and measured record: how its first copy came.
    private const byte OnTime = 1;
    private const byte Late = 2;

    private readonly SimulationOptions _options;
    private readonly OverlayNode[] _nodes;
    private readonly bool[] _crashed;
    private readonly long[] _tickAt;
    private readonly PriorityQueue<SimEvent, EventKey> _queue = new();
    private readonly Random _network;
    private readonly TcpLinks? _tcp;
    private readonly Func<long> _drawLatency;
    private readonly SimulationSignature _signature;
    private readonly long _latencyMin;
    private readonly long _latencyMax;
    private readonly Dictionary<string, int> _measured = [];
    private readonly List<int[]> _deliveries = [];
    private readonly List<byte[]> _lateness = [];
    private readonly long[] _breakdown = new long[8];
    private readonly long[] _treeChanges = new long[2];
    private readonly List<int> _reachedCount = [];
    private readonly List<long> _publishedAt = [];
    private bool[]? _partitionSide;
    private bool _partitioned;
    private long _sequence;
    private int _incomplete;
    private bool _counting;
    private long _payloadCopies;
    private long _payloadSends;
    private long _controlMessages;
    private int _falseSuspicions;
    private int _crashCount;
    private SimEvent _arriving;
    private OverlayMessageType? _handling;
    private bool _handlingMeasured;

    /// <summary>Creates the nodes; none has started yet.</summary>
    public OverlaySimulator(SimulationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Nodes < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "a simulation needs at least 2 nodes");
        }

        _options = options;
        _network = new Random(options.Seed);
        _signature = new SimulationSignature(SplitMix((ulong)options.Seed));
        _latencyMin = options.LatencyMinMs * 1000L;
        _latencyMax = options.LatencyMaxMs * 1000L;
        _tcp = options.LossModel == LossModel.Tcp ? new TcpLinks(options.Nodes, options.Loss) : null;
        _drawLatency = DrawLatency;
        _nodes = new OverlayNode[options.Nodes];
        _crashed = new bool[options.Nodes];
        _tickAt = new long[options.Nodes];
        Array.Fill(_tickAt, long.MaxValue);
        for (int i = 0; i < _nodes.Length; i++)
        {
            var random = new Random((int)(SplitMix(((ulong)(uint)options.Seed << 32) | (uint)i) & 0x7fffffff));
            _nodes[i] = new OverlayNode(new PeerAddress((ulong)i + 1), options.Overlay, random, _signature, _signature, this);
        }
    }

    /// <summary>The nodes; node i has id i + 1.</summary>
    public IReadOnlyList<OverlayNode> Nodes => _nodes;

    /// <summary>The signer and verifier every node shares.</summary>
    public SimulationSignature Signature => _signature;

    /// <summary>Simulated time in microseconds.</summary>
    public long Now { get; private set; }

    /// <summary>Events processed so far.</summary>
    public long Events { get; private set; }

    /// <summary>Live peers evicted as dead so far.</summary>
    public int FalseSuspicions => _falseSuspicions;

    /// <summary>Called now and then with the simulated time, for a progress display.</summary>
    public Action<long>? Progress { get; set; }

    /// <summary>Gap between two joins: <see cref="SimulationOptions.JoinSpacing"/>, stretched so that the joins take at least 2 s.</summary>
    public long JoinSpacing => Math.Max(_options.JoinSpacing, 2_000_000 / _nodes.Length);

    /// <summary>True when node <paramref name="index"/> has crashed.</summary>
    public bool IsCrashed(int index) => _crashed[index];

    /// <summary>Node 0 starts now; node i joins at i × <see cref="JoinSpacing"/> through four random earlier nodes. Returns when the last has started.</summary>
    public void JoinAll()
    {
        long spacing = JoinSpacing;
        Schedule(Now, 0, -1, StartEvent, null);
        for (int i = 1; i < _nodes.Length; i++)
        {
            Schedule(Now + (i * spacing), i, -1, StartEvent, null);
        }

        RunUntil(Now + ((_nodes.Length - 1) * spacing));
    }

    /// <summary>Processes every event up to <paramref name="time"/>, or until <paramref name="stop"/> says so.</summary>
    public void RunUntil(long time, Func<bool>? stop = null)
    {
        while (_queue.TryPeek(out SimEvent e, out EventKey key) && key.Time <= time)
        {
            _queue.Dequeue();
            Now = key.Time;
            Handle(e);
            if ((++Events & 0xFFFF) == 0)
            {
                Progress?.Invoke(Now);
            }

            if (stop is not null && stop())
            {
                return;
            }
        }

        Now = Math.Max(Now, time);
    }

    /// <summary>Crashes node <paramref name="index"/>: it stops, and messages to it are lost.</summary>
    public void Crash(int index)
    {
        if (!_crashed[index])
        {
            _crashed[index] = true;
            _crashCount++;
        }
    }

    /// <summary>Crashes a random <paramref name="fraction"/> of the live nodes.</summary>
    public void CrashRandom(double fraction)
    {
        foreach (int i in PickLive((int)Math.Round(fraction * _nodes.Length), null))
        {
            Crash(i);
        }
    }

    /// <summary>Cuts a random <paramref name="fraction"/> of the live nodes off from the rest until <see cref="Heal"/>.</summary>
    public void PartitionRandom(double fraction)
    {
        _partitionSide = new bool[_nodes.Length];
        foreach (int i in PickLive((int)Math.Round(fraction * _nodes.Length), null))
        {
            _partitionSide[i] = true;
        }

        _partitioned = true;
    }

    /// <summary>Ends the partition.</summary>
    public void Heal() => _partitioned = false;

    /// <summary>Publishes <paramref name="content"/> from node <paramref name="index"/> now.</summary>
    public OverlayRecord Publish(int index, RecordContent content)
    {
        OverlayRecord record = _nodes[index].Publish(content, Now);
        Drain(index);
        return record;
    }

    /// <summary>
    /// The whole scenario: joins, settling, a warm-up broadcast that shapes the tree, crashes and
    /// the partition just before publishing, then the measured records one second apart.
    /// </summary>
    public SimulationReport Run()
    {
        JoinAll();
        RunUntil(Now + Seconds(_options.SettleSeconds));
        // The first broadcast eager-pushes on every link and prunes the duplicates into a tree.
        Publish(_network.Next(_nodes.Length), new RecordContent(RecordKind.Node, "warm-up", new byte[64]));
        RunUntil(Now + Seconds(2));

        if (_options.Crash > 0)
        {
            CrashRandom(_options.Crash);
        }

        long healAt = long.MaxValue;
        if (_options.Partition > 0)
        {
            PartitionRandom(_options.Partition);
            healAt = Now + Seconds(_options.PartitionSeconds);
        }

        _counting = true;
        long first = Now;
        int[]? publishers = null;
        for (int k = 0; k < _options.Records; k++)
        {
            RunUntil(Math.Min(first + (k * 1_000_000L), healAt));
            if (Now >= healAt)
            {
                Heal();
                healAt = long.MaxValue;
                RunUntil(first + (k * 1_000_000L));
            }

            string key = $"measured/{k}";
            _measured[key] = k;
            var times = new int[_nodes.Length];
            Array.Fill(times, -1);
            _deliveries.Add(times);
            _lateness.Add(new byte[_nodes.Length]);
            _reachedCount.Add(0);
            _publishedAt.Add(Now);
            _incomplete++;
            bool[]? side = _partitionSide is not null && _partitioned ? _partitionSide : null;
            int publisher;
            if (_options.Publishers > 0)
            {
                publishers ??= PickLive(_options.Publishers, side);
                publisher = publishers[k % publishers.Length];
            }
            else
            {
                publisher = PickLive(1, side)[0];
            }

            Publish(publisher, new RecordContent(RecordKind.Route, key, new byte[256], Leased: true));
        }

        long end = Now + Seconds(_options.MaxWaitSeconds);
        if (healAt != long.MaxValue)
        {
            RunUntil(healAt, () => _incomplete == 0);
            Heal();
        }

        RunUntil(end, () => _incomplete == 0);
        _counting = false;
        return Report();
    }

    /// <summary>Measures the records published so far.</summary>
    public SimulationReport Report()
    {
        int live = _nodes.Length - _crashCount;
        var seconds = new double?[SimulationReport.Shares.Length];
        int reached = live;
        for (int k = 0; k < _deliveries.Count; k++)
        {
            int[] times = _deliveries[k];
            var sorted = new List<int>(live);
            for (int i = 0; i < times.Length; i++)
            {
                if (!_crashed[i] && times[i] >= 0)
                {
                    sorted.Add(times[i]);
                }
            }

            sorted.Sort();
            reached = Math.Min(reached, sorted.Count);
            for (int s = 0; s < seconds.Length; s++)
            {
                int need = (int)Math.Ceiling(SimulationReport.Shares[s] * live);
                double? t = sorted.Count >= need ? sorted[need - 1] / 1e6 : null;
                seconds[s] = k == 0 ? t : (seconds[s] is double a && t is double b ? Math.Max(a, b) : null);
            }
        }

        double perNode = Math.Max(1, live) * (double)Math.Max(1, _deliveries.Count);
        return new SimulationReport
        {
            Seconds = seconds,
            LiveNodes = live,
            Reached = _deliveries.Count == 0 ? 0 : reached,
            PayloadCopiesPerNode = _payloadCopies / perNode,
            PayloadSendsPerNode = _payloadSends / perNode,
            ControlMessagesPerNode = _controlMessages / perNode,
            FalseSuspicions = _falseSuspicions,
            Breakdown = new PayloadBreakdown
            {
                FirstByPush = _breakdown[0] / perNode,
                FirstByGraft = _breakdown[1] / perNode,
                FirstByRepair = _breakdown[2] / perNode,
                DuplicatePushLateLink = _breakdown[3] / perNode,
                DuplicatePushLateSender = _breakdown[4] / perNode,
                DuplicatePushOnTime = _breakdown[5] / perNode,
                DuplicateGraftAnswer = _breakdown[6] / perNode,
                DuplicateRepair = _breakdown[7] / perNode,
                OnTheWay = (_payloadCopies - _breakdown.Sum()) / perNode,
                Grafts = _treeChanges[0] / perNode,
                Prunes = _treeChanges[1] / perNode,
            },
            Events = Events,
            SimulatedSeconds = Now / 1e6,
        };
    }

    void IOverlayObserver.RecordAccepted(OverlayNode node, OverlayRecord record, long now)
    {
        if (_measured.Count > 0 && _measured.TryGetValue(record.Key, out int k))
        {
            int index = (int)(node.Self.Id - 1);
            int[] times = _deliveries[k];
            if (times[index] < 0 && !_crashed[index])
            {
                times[index] = (int)(now - _publishedAt[k]);
                byte[] lateness = _lateness[k];
                switch (_arriving.Cause)
                {
                    case PushCause:
                        _breakdown[0]++;
                        lateness[index] = _arriving.Late || lateness[_arriving.From] == Late ? Late : OnTime;
                        break;
                    case GraftAnswerCause:
                        _breakdown[1]++;
                        lateness[index] = Late;
                        break;
                    case RepairCause:
                        _breakdown[2]++;
                        lateness[index] = Late;
                        break;
                    default:
                        // The publisher's own copy: not a received one.
                        lateness[index] = OnTime;
                        break;
                }

                if (++_reachedCount[k] == _nodes.Length - _crashCount)
                {
                    _incomplete--;
                }
            }
        }
    }

    void IOverlayObserver.Duplicate(OverlayNode node, PeerAddress from, OverlayRecord record, long now)
    {
        if (_measured.Count > 0 && _measured.TryGetValue(record.Key, out int k))
        {
            switch (_arriving.Cause)
            {
                case PushCause:
                    _breakdown[_arriving.Late ? 3 : _lateness[k][_arriving.From] == Late ? 4 : 5]++;
                    break;
                case GraftAnswerCause:
                    _breakdown[6]++;
                    break;
                case RepairCause:
                    _breakdown[7]++;
                    break;
            }
        }
    }

    void IOverlayObserver.PeerEvicted(OverlayNode node, PeerAddress peer, long now)
    {
        int index = (int)(peer.Id - 1);
        if (index >= 0 && index < _nodes.Length && !_crashed[index])
        {
            _falseSuspicions++;
        }
    }

    private void Handle(SimEvent e)
    {
        int to = e.To;
        if (_crashed[to])
        {
            return;
        }

        OverlayNode node = _nodes[to];
        switch (e.Kind)
        {
            case MessageEvent:
                _arriving = e;
                _handling = e.Message!.Type;
                _handlingMeasured = e.Message.Record is { } r && _measured.ContainsKey(r.Key);
                node.Step(_nodes[e.From].Self, e.Message!, Now);
                _arriving = default;
                break;
            case TickEvent:
                if (_tickAt[to] != Now)
                {
                    return; // superseded by an earlier deadline
                }

                _tickAt[to] = long.MaxValue;
                node.Tick(Now);
                break;
            case StartEvent:
                if (to == 0)
                {
                    node.Start([], Now);
                }
                else
                {
                    // Contacts are four earlier nodes that are in the overlay already (as an operator
                    // would list a few running nodes); node 0 when none is found. The node falls
                    // back on them whenever it is cut off, so they must not all die with its neighbours.
                    var contacts = new PeerAddress[4];
                    for (int c = 0; c < contacts.Length; c++)
                    {
                        contacts[c] = _nodes[Contact(to)].Self;
                    }

                    node.Start(contacts, Now);
                }

                break;
        }

        Drain(to);
        _handling = null;
        _handlingMeasured = false;
    }

    private int Contact(int joiner)
    {
        for (int attempt = 0; attempt < 8; attempt++)
        {
            int candidate = _network.Next(joiner);
            if (!_crashed[candidate] && _nodes[candidate].ActiveCount > 0)
            {
                return candidate;
            }
        }

        return 0;
    }

    private void Drain(int from)
    {
        OverlayNode node = _nodes[from];
        IReadOnlyList<OutboundMessage> outbox = node.Outbox;
        for (int m = 0; m < outbox.Count; m++)
        {
            OutboundMessage message = outbox[m];
            long target = (long)message.To.Id - 1;
            if (target < 0 || target >= _nodes.Length)
            {
                continue;
            }

            int to = (int)target;
            bool measuredCopy = _counting && message.Message.IsPayload && _measured.ContainsKey(message.Message.Record!.Key);
            if (measuredCopy)
            {
                _payloadSends++;
            }
            else if (_counting && !message.Message.IsPayload)
            {
                _controlMessages++;
                // Tree changes for the measured records: GRAFTs asking for one, PRUNEs answering a
                // duplicate of one.
                if (message.Message.Type == OverlayMessageType.Graft && message.Message.Ids.Any(id => _measured.ContainsKey(id.Slot.Key)))
                {
                    _treeChanges[0]++;
                }
                else if (message.Message.Type == OverlayMessageType.Prune && _handlingMeasured)
                {
                    _treeChanges[1]++;
                }
            }

            if (_crashed[to] || (_partitioned && _partitionSide![to] != _partitionSide[from]))
            {
                continue;
            }

            // A copy is counted when it is sure to reach a live node: nodes crash only before the
            // measured records, so every message scheduled here is received, also after the run stops.
            byte cause = !measuredCopy ? NoCause
                : message.Message.Flag ? RepairCause
                : _handling == OverlayMessageType.Graft ? GraftAnswerCause
                : PushCause;
            if (_tcp is not null)
            {
                _payloadCopies += measuredCopy ? 1 : 0;
                long at = _tcp.Deliver(from, to, Now, _drawLatency, _network, out bool late);
                Schedule(at, to, from, MessageEvent, message.Message, cause, late);
                continue;
            }

            if (_options.Loss > 0 && _network.NextDouble() < _options.Loss)
            {
                continue;
            }

            _payloadCopies += measuredCopy ? 1 : 0;
            Schedule(Now + DrawLatency(), to, from, MessageEvent, message.Message, cause, false);
        }

        node.ClearOutbox();
        long next = node.NextDeadline;
        if (next != long.MaxValue)
        {
            next = Math.Max(next, Now + 1);
            if (next < _tickAt[from])
            {
                _tickAt[from] = next;
                Schedule(next, from, -1, TickEvent, null);
            }
        }
    }

    private long DrawLatency() => _latencyMin == _latencyMax ? _latencyMin : _network.NextInt64(_latencyMin, _latencyMax + 1);

    private void Schedule(long time, int to, int from, byte kind, OverlayMessage? message, byte cause = NoCause, bool late = false) =>
        _queue.Enqueue(new SimEvent(to, from, kind, message, cause, late), new EventKey(time, _sequence++));

    private int[] PickLive(int count, bool[]? excludeSide)
    {
        var candidates = new List<int>(_nodes.Length);
        for (int i = 0; i < _nodes.Length; i++)
        {
            if (!_crashed[i] && (excludeSide is null || !excludeSide[i]))
            {
                candidates.Add(i);
            }
        }

        count = Math.Min(count, candidates.Count);
        for (int i = 0; i < count; i++)
        {
            int j = i + _network.Next(candidates.Count - i);
            (candidates[i], candidates[j]) = (candidates[j], candidates[i]);
        }

        return candidates.GetRange(0, count).ToArray();
    }

    private static long Seconds(double s) => (long)(s * 1_000_000);

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private readonly record struct SimEvent(int To, int From, byte Kind, OverlayMessage? Message, byte Cause, bool Late);

    private readonly record struct EventKey(long Time, long Sequence) : IComparable<EventKey>
    {
        public int CompareTo(EventKey other) => Time != other.Time ? Time.CompareTo(other.Time) : Sequence.CompareTo(other.Sequence);
    }
}
