using Beemesh.Overlay.Records;

namespace Beemesh.Overlay;

/// <summary>
/// One overlay node, sans-IO: HyParView membership with keepalive failure detection, Plumtree
/// dissemination of signed records, and the record store. The host feeds it inbound messages
/// (<see cref="Step"/>), timer ticks (<see cref="Tick"/>) and link failures, and drains
/// <see cref="Outbox"/>; time (microseconds) and randomness are injected, so the same class runs
/// over sockets in the agent and by the hundred thousand in the simulator.
/// <code>
/// A peer as this node sees it:
///
///   (unknown) --JOIN / FORWARD_JOIN / SHUFFLE / DISCONNECT--> passive
///   passive --NEIGHBOR sent--> pending --accepted--> active (eager)
///   pending --refused--> passive          pending --no answer twice--> (forgotten)
///   active (eager) --duplicate: PRUNE--> active (lazy) --GRAFT / new record--> active (eager)
///   active --silent SilenceThreshold--> silent: IHAVE instead of eager push; all but one silent:
///       NEIGHBOR to passive peers at once, the view may exceed its size until the silent are evicted
///   active --silent SuspectTimeout--> suspect --probe answered--> active
///   suspect --no answer within ProbeTimeout--> (evicted, forgotten)
///   active --DISCONNECT / dropped for a newcomer--> passive     active --LinkDown--> (forgotten)
/// </code>
/// </summary>
public sealed partial class OverlayNode
{
    /// <summary>Wire protocol version sent in Hello.</summary>
    public const int ProtocolVersion = 1;

    /// <summary>NEIGHBOR requests sent to one candidate before it is taken for dead.</summary>
    private const int NeighborAttempts = 2;

    /// <summary>Peers last taken into the active view, kept as extra contacts should the node be left with no neighbour and no candidate.</summary>
    private const int RecentPeers = 8;

    private readonly OverlayOptions _options;
    private readonly Random _random;
    private readonly IRecordVerifier _verifier;
    private readonly IRecordSigner _signer;
    private readonly IOverlayObserver? _observer;
    private readonly List<ActiveLink> _active;
    private readonly List<PeerAddress> _passive;
    private readonly List<OutboundMessage> _outbox = [];
    private readonly RecordStore _store = new();
    private readonly HybridLogicalClock _clock = new();
    private List<(PeerAddress Peer, long Deadline, int Attempts, bool Extra)>? _pending;
    private long _nextStarvedShuffle;
    private long _nextIsolationCheck;
    private List<OverlayRecord>? _leased;
    private PeerAddress[] _contacts = [];
    private readonly PeerAddress[] _recent = new PeerAddress[RecentPeers];
    private int _recentCount;
    private PeerAddress[]? _lastShuffleSample;
    private int _nextContact;
    private long _nextHeartbeat = long.MaxValue;
    private long _nextShuffle = long.MaxValue;
    private long _nextAntiEntropy = long.MaxValue;
    private long _joinDeadline = long.MaxValue;
    private long _nextLeaseRenewal = long.MaxValue;
    private int _localHealth;
    private long _now;

    /// <summary>Creates a node; nothing happens until <see cref="Start"/>.</summary>
    public OverlayNode(PeerAddress self, OverlayOptions options, Random random, IRecordVerifier verifier, IRecordSigner signer, IOverlayObserver? observer = null)
    {
        Self = self;
        _options = options;
        _random = random;
        _verifier = verifier;
        _signer = signer;
        _observer = observer;
        _active = new List<ActiveLink>(options.ActiveViewSize + 1);
        _passive = new List<PeerAddress>(Math.Min(options.PassiveViewSize + 1, 64));
    }

    /// <summary>This node.</summary>
    public PeerAddress Self { get; }

    /// <summary>Messages to send, in order; the host sends them and calls <see cref="ClearOutbox"/>.</summary>
    public IReadOnlyList<OutboundMessage> Outbox => _outbox;

    /// <summary>The active view: peers with a live link.</summary>
    public IEnumerable<PeerAddress> ActiveView => _active.Select(l => l.Peer);

    /// <summary>True while the active neighbour <paramref name="id"/> is suspected (silent, being probed before eviction).</summary>
    public bool IsSuspected(ulong id) => Find(id) is { SuspectDeadline: not 0 };

    /// <summary>Number of active peers.</summary>
    public int ActiveCount => _active.Count;

    /// <summary>The passive view: candidates to refill the active view.</summary>
    public IReadOnlyList<PeerAddress> PassiveView => _passive;

    /// <summary>Active peers on eager (tree) links.</summary>
    public IEnumerable<PeerAddress> EagerPeers => _active.Where(l => l.Eager).Select(l => l.Peer);

    /// <summary>The records held.</summary>
    public RecordStore Store => _store;

    /// <summary>The node's hybrid logical clock.</summary>
    public HybridLogicalClock Clock => _clock;

    /// <summary>Lifeguard local health: 0 when the node keeps its own timing; timeouts scale by 1 + this.</summary>
    public int LocalHealth => _localHealth;

    /// <summary>True after <see cref="Leave"/>.</summary>
    public bool HasLeft { get; private set; }

    /// <summary>True between <see cref="Start"/> and <see cref="Leave"/>.</summary>
    public bool IsRunning => _nextHeartbeat != long.MaxValue && !HasLeft;

    /// <summary>Forgets the messages taken from <see cref="Outbox"/>.</summary>
    public void ClearOutbox() => _outbox.Clear();

    /// <summary>True when <paramref name="peer"/> is in the active view.</summary>
    public bool IsActive(PeerAddress peer) => Find(peer.Id) is not null;

    /// <summary>
    /// Starts the node: with no contacts it is the first of its overlay; otherwise it sends JOIN to
    /// the first contact and tries the next each <see cref="OverlayOptions.JoinTimeout"/> until one answers.
    /// </summary>
    public void Start(IReadOnlyList<PeerAddress> contacts, long now)
    {
        _contacts = contacts.Where(c => c.Id != Self.Id).ToArray();
        // Timers start at a random phase so that nodes started together do not tick together.
        _nextHeartbeat = now + 1 + _random.NextInt64(_options.KeepaliveInterval);
        _nextShuffle = now + 1 + _random.NextInt64(_options.ShuffleInterval);
        _nextAntiEntropy = now + 1 + _random.NextInt64(_options.AntiEntropyInterval);
        if (_contacts.Length > 0)
        {
            SendJoin(now);
        }
    }

    /// <summary>Leaves: DISCONNECT to every active peer; the node then ignores everything.</summary>
    public void Leave(long now)
    {
        foreach (ActiveLink link in _active)
        {
            _outbox.Add(new OutboundMessage(link.Peer, OverlayMessage.Disconnect));
            _observer?.ActiveViewChanged(this, link.Peer, false, now);
        }

        _active.Clear();
        HasLeft = true;
    }

    /// <summary>The link to <paramref name="peer"/> failed (connection reset, TLS failure): it leaves both views.</summary>
    public void LinkDown(PeerAddress peer, long now)
    {
        if (HasLeft)
        {
            return;
        }

        RemovePassive(peer.Id);
        RemovePending(peer.Id);
        if (RemoveActive(peer.Id, now) is not null)
        {
            Refill(now);
        }
    }

    /// <summary>The earliest time <see cref="Tick"/> has work; <see cref="long.MaxValue"/> when none.</summary>
    public long NextDeadline
    {
        get
        {
            if (HasLeft)
            {
                return long.MaxValue;
            }

            long next = Math.Min(Math.Min(_nextHeartbeat, _nextShuffle), Math.Min(_nextAntiEntropy, _joinDeadline));
            next = Math.Min(next, Math.Min(_lazyFlushAt, _nextLeaseRenewal));
            foreach (ActiveLink link in _active)
            {
                if (link.SuspectDeadline != 0 && link.SuspectDeadline < next)
                {
                    next = link.SuspectDeadline;
                }
            }

            if (_pending is not null)
            {
                foreach (var p in _pending)
                {
                    next = Math.Min(next, p.Deadline);
                }
            }

            if (_missing is not null)
            {
                foreach (MissingRecord m in _missing)
                {
                    next = Math.Min(next, m.Deadline);
                }
            }

            long isolated = IsolatedFrom();
            if (isolated != long.MaxValue)
            {
                next = Math.Min(next, Math.Max(isolated, _nextIsolationCheck));
            }

            return next;
        }
    }

    /// <summary>Handles one inbound message from <paramref name="from"/> (the authenticated peer of the link).</summary>
    public void Step(PeerAddress from, OverlayMessage message, long now)
    {
        if (HasLeft || !IsRunning || from.Id == Self.Id)
        {
            return;
        }

        _now = now;
        ActiveLink? link = Find(from.Id);
        if (link is not null)
        {
            link.LastHeard = now;
        }

        switch (message.Type)
        {
            case OverlayMessageType.Join: OnJoin(from, now); break;
            case OverlayMessageType.JoinReply: OnJoinReply(from, message, now); break;
            case OverlayMessageType.ForwardJoin: OnForwardJoin(from, message, now); break;
            case OverlayMessageType.Neighbor: OnNeighbor(from, message.Flag, now); break;
            case OverlayMessageType.NeighborReply: OnNeighborReply(from, message.Flag, now); break;
            case OverlayMessageType.Disconnect: OnDisconnect(from, now); break;
            case OverlayMessageType.Shuffle: OnShuffle(from, message, now); break;
            case OverlayMessageType.ShuffleReply: Integrate(message.Peers, _lastShuffleSample); break;
            case OverlayMessageType.Ping: OnPing(from, link); break;
            case OverlayMessageType.ProbeRequest: Send(message.Peer, new OverlayMessage(OverlayMessageType.Probe, from)); break;
            case OverlayMessageType.Probe: Send(from, new OverlayMessage(OverlayMessageType.ProbeAck, message.Peer)); break;
            case OverlayMessageType.ProbeAck: OnProbeAck(from, message.Peer, now); break;
            case OverlayMessageType.ProbeResult: MarkAlive(message.Peer.Id, now); break;
            case OverlayMessageType.Gossip: OnGossip(from, link, message, now); break;
            case OverlayMessageType.IHave: OnIHave(from, message.Ids, now); break;
            case OverlayMessageType.Graft: OnGraft(from, link, message.Ids); break;
            case OverlayMessageType.Prune:
                if (link is not null)
                {
                    link.Eager = false;
                }

                break;
            case OverlayMessageType.Digest: OnDigest(from, message.Ids); break;
            case OverlayMessageType.Want: OnWant(from, message.Ids); break;
            default: break; // Hello is the host's business; anything else is ignored.
        }
    }

    /// <summary>Runs every timer due at <paramref name="now"/>.</summary>
    public void Tick(long now)
    {
        if (HasLeft || !IsRunning)
        {
            return;
        }

        _now = now;
        if (now >= _nextHeartbeat)
        {
            Heartbeat(now);
        }

        for (int i = _active.Count - 1; i >= 0; i--)
        {
            if (i < _active.Count && _active[i].SuspectDeadline != 0 && now >= _active[i].SuspectDeadline)
            {
                PeerAddress peer = _active[i].Peer;
                RemoveActive(peer.Id, now);
                RemovePassive(peer.Id);
                _observer?.PeerEvicted(this, peer, now);
                Refill(now);
            }
        }

        if (_pending is not null)
        {
            for (int i = _pending.Count - 1; i >= 0; i--)
            {
                if (i < _pending.Count && now >= _pending[i].Deadline)
                {
                    var (peer, _, attempts, extra) = _pending[i];
                    if (attempts < NeighborAttempts)
                    {
                        // One more try: a lost request or answer is not a dead peer.
                        _pending[i] = (peer, now + _options.NeighborTimeout, attempts + 1, extra);
                        Send(peer, new OverlayMessage(OverlayMessageType.Neighbor, Self, flag: NeedsHighPriority));
                        continue;
                    }

                    // No answer: the candidate is gone; try another.
                    RemovePassive(peer.Id);
                    _pending.RemoveAt(i);
                    Refill(now);
                }
            }
        }

        if (now >= _nextIsolationCheck && now >= IsolatedFrom())
        {
            OnIsolated(now);
        }

        if (now >= _joinDeadline)
        {
            SendJoin(now, retry: true);
        }

        if (now >= _nextShuffle)
        {
            _nextShuffle = now + _options.ShuffleInterval;
            StartShuffle(now);
        }

        if (now >= _nextAntiEntropy)
        {
            _nextAntiEntropy = now + _options.AntiEntropyInterval;
            if (_active.Count > 0 && _store.Count > 0)
            {
                Send(_active[_random.Next(_active.Count)].Peer, new OverlayMessage(OverlayMessageType.Digest, ids: _store.Ids()));
            }
        }

        if (now >= _nextLeaseRenewal)
        {
            RenewLeases(now);
        }

        if (now >= _lazyFlushAt)
        {
            FlushLazy();
        }

        if (_missing is not null)
        {
            RunMissingTimers(now);
        }
    }

    private void Heartbeat(long now)
    {
        // Lifeguard local health: a heartbeat that runs late means this node is slow (CPU, GC,
        // a stalled host), so its view of others' silence is not to be trusted as much.
        if (now - _nextHeartbeat > _options.SlowTickThreshold)
        {
            _localHealth = Math.Min(_options.MaxLocalHealth, _localHealth + 1);
        }

        _nextHeartbeat = now + _options.KeepaliveInterval;
        long scale = 1 + _localHealth;
        bool allHeard = true;
        RecordId[]? recent = RecentIds(now);
        OverlayMessage? reannounce = recent is null ? null : new OverlayMessage(OverlayMessageType.IHave, ids: recent);
        for (int i = 0; i < _active.Count; i++)
        {
            ActiveLink link = _active[i];
            if (reannounce is not null)
            {
                Send(link.Peer, reannounce);
            }
            else if (now - link.LastSent >= _options.KeepaliveInterval / 4)
            {
                Send(link.Peer, OverlayMessage.Ping);
            }

            long silent = now - link.LastHeard;
            if (silent > _options.KeepaliveInterval * 2)
            {
                allHeard = false;
            }

            if (link.SuspectDeadline == 0 && silent > _options.SuspectTimeout * scale)
            {
                link.SuspectDeadline = now + _options.ProbeTimeout * scale;
                _observer?.PeerSuspected(this, link.Peer, now);
                Probe(link);
            }
            else if (link.SuspectDeadline != 0)
            {
                // Probe again each heartbeat while suspected: one lost round must not evict a live peer.
                Probe(link);
            }
        }

        if (allHeard && _localHealth > 0)
        {
            _localHealth--;
        }

        TrimExtraLinks(now);

        if (_active.Count < _options.ActiveViewSize)
        {
            Refill(now);
        }

        _store.RemoveExpired(now);
    }

    private void Probe(ActiveLink link)
    {
        // A direct probe, and the same through up to IndirectProbes other neighbours: a lossy or
        // broken link between the two of us must not get a live peer evicted.
        Send(link.Peer, new OverlayMessage(OverlayMessageType.Probe, Self));
        int asked = 0;
        int start = _active.Count > 0 ? _random.Next(_active.Count) : 0;
        for (int k = 0; k < _active.Count && asked < _options.IndirectProbes; k++)
        {
            ActiveLink helper = _active[(start + k) % _active.Count];
            if (helper != link && helper.SuspectDeadline == 0)
            {
                Send(helper.Peer, new OverlayMessage(OverlayMessageType.ProbeRequest, link.Peer));
                asked++;
            }
        }
    }

    private void OnProbeAck(PeerAddress from, PeerAddress requester, long now)
    {
        if (requester.Id == Self.Id)
        {
            MarkAlive(from.Id, now);
        }
        else
        {
            Send(requester, new OverlayMessage(OverlayMessageType.ProbeResult, from));
        }
    }

    private void MarkAlive(ulong id, long now)
    {
        ActiveLink? link = Find(id);
        if (link is null)
        {
            return;
        }

        if (link.SuspectDeadline != 0)
        {
            link.SuspectDeadline = 0;
            // We suspected a live peer: Lifeguard counts that against our own health.
            _localHealth = Math.Min(_options.MaxLocalHealth, _localHealth + 1);
        }

        link.LastHeard = now;
    }

    private void Send(PeerAddress to, OverlayMessage message)
    {
        Find(to.Id)?.LastSent = _now;
        _outbox.Add(new OutboundMessage(to, message));
    }

    private ActiveLink? Find(ulong id)
    {
        foreach (ActiveLink link in _active)
        {
            if (link.Peer.Id == id)
            {
                return link;
            }
        }

        return null;
    }
}
