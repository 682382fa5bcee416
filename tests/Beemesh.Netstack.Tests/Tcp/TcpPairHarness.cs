using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Tcp;

/// <summary>
/// Impairments of the simulated link, applied independently to every segment. With
/// <paramref name="BottleneckBitsPerSecond"/> the client → server direction also passes a
/// bottleneck: segments (payload plus 40 header bytes) leave one after another at that rate from a
/// drop-tail queue of <paramref name="BottleneckQueue"/> segments, and a full queue drops the arrival.
/// </summary>
internal sealed record LinkProfile(double Loss = 0, double Duplicate = 0, double Reorder = 0, TimeSpan? Delay = null, TimeSpan? Jitter = null,
    long BottleneckBitsPerSecond = 0, int BottleneckQueue = 0)
{
    public TimeSpan BaseDelay => Delay ?? TimeSpan.FromMilliseconds(5);
    public TimeSpan ReorderDelay => Jitter ?? TimeSpan.FromMilliseconds(15);
}

/// <summary>
/// Two connections joined by a simulated link with seeded loss, duplication, reordering and
/// delay. Everything is driven by the earliest pending event (a delivery or a connection
/// deadline): no sleeps, fully deterministic for a given seed.
/// </summary>
internal sealed class TcpPairHarness
{
    private readonly Random _random;
    private readonly PriorityQueue<Packet, (TimeSpan, long)> _inFlight = new();
    private long _order;
    private readonly Queue<TimeSpan> _bottleneck = new(); // departure times of the segments queued or on the wire
    private TimeSpan _bottleneckFree;

    public TcpPairHarness(int seed, LinkProfile link, TcpConnectionOptions? clientOptions = null, TcpConnectionOptions? serverOptions = null,
        long clientSink = 1 << 20, long serverSink = 1 << 20)
    {
        _random = new Random(seed);
        Link = link;
        Client = new Endpoint("client", this, clientOptions ?? new TcpConnectionOptions(), 100_000u, clientSink, toServer: true);
        Server = new Endpoint("server", this, serverOptions ?? new TcpConnectionOptions(), 3_000_000_000u, serverSink, toServer: false);
    }

    public LinkProfile Link { get; set; }
    public Endpoint Client { get; }
    public Endpoint Server { get; }
    public TimeSpan Now { get; private set; }
    public int Delivered { get; private set; }
    public int Dropped { get; private set; }

    /// <summary>Segments the bottleneck queue dropped because it was full (also counted in <see cref="Dropped"/>).</summary>
    public int QueueDrops { get; private set; }

    /// <summary>When set, sinks are drained by the application after every step.</summary>
    public bool AutoDrain { get; set; } = true;

    /// <summary>When true, an endpoint closes as soon as its peer finished and its own data is queued.</summary>
    public bool CloseOnPeerFin { get; set; } = true;

    /// <summary>Extra inspection of every segment put on the wire (before impairments).</summary>
    public Action<Endpoint, SentSegment>? OnWire { get; set; }

    public void Connect()
    {
        Client.Conn.Connect(Now, Client.Out);
    }

    /// <summary>Runs until <paramref name="done"/> holds or <paramref name="limit"/> of simulated time passed.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan limit)
    {
        TimeSpan end = Now + limit;
        for (int steps = 0; steps < 5_000_000; steps++)
        {
            Step();
            if (done())
            {
                return true;
            }

            TimeSpan? next = NextEventTime();
            if (next is null || next.Value > end)
            {
                return done();
            }

            if (next.Value > Now)
            {
                Now = next.Value;
            }
        }

        return done();
    }

    private TimeSpan? NextEventTime()
    {
        TimeSpan? t = null;
        if (_inFlight.TryPeek(out _, out var p))
        {
            t = p.Item1;
        }

        foreach (var e in new[] { Client, Server })
        {
            if (e.Conn.NextDeadline is { } d && (t is null || d < t))
            {
                t = d;
            }
        }

        return t;
    }

    private void Step()
    {
        Client.Out.Now = Server.Out.Now = Now;
        while (_inFlight.TryPeek(out var pkt, out var at) && at.Item1 <= Now)
        {
            _inFlight.Dequeue();
            Endpoint to = pkt.ToServer ? Server : Client;
            TcpSegmentInfo info = pkt.Info;
            Delivered++;
            if (pkt.ToServer && to.Conn.State == TcpState.Closed && !to.Accepted &&
                (info.Flags & (TcpFlags.Syn | TcpFlags.Ack)) == TcpFlags.Syn)
            {
                to.Accepted = true;
                to.Conn.AcceptSyn(in info, Now, to.Out);
            }
            else
            {
                to.Conn.OnSegment(in info, pkt.Payload, Now, to.Out);
            }
        }

        foreach (var e in new[] { Client, Server })
        {
            if (e.Conn.NextDeadline is { } d && d <= Now)
            {
                e.Conn.OnTimer(Now, e.Out);
            }
        }

        foreach (var e in new[] { Client, Server })
        {
            e.Application(Now);
            e.Conn.Poll(Now, e.Out);
            e.Collect();
        }
    }

    private void Transmit(Endpoint from, SentSegment s)
    {
        OnWire?.Invoke(from, s);
        if (_random.NextDouble() < Link.Loss)
        {
            Dropped++;
            return;
        }

        TimeSpan queued = TimeSpan.Zero;
        if (Link.BottleneckBitsPerSecond > 0 && from == Client)
        {
            while (_bottleneck.TryPeek(out TimeSpan gone) && gone <= Now)
            {
                _bottleneck.Dequeue();
            }

            if (_bottleneck.Count > Link.BottleneckQueue)
            {
                Dropped++;
                QueueDrops++;
                return;
            }

            TimeSpan start = _bottleneckFree > Now ? _bottleneckFree : Now;
            _bottleneckFree = start + TimeSpan.FromSeconds((s.Length + 40) * 8.0 / Link.BottleneckBitsPerSecond);
            _bottleneck.Enqueue(_bottleneckFree);
            queued = _bottleneckFree - Now;
        }

        int copies = _random.NextDouble() < Link.Duplicate ? 2 : 1;
        for (int i = 0; i < copies; i++)
        {
            TimeSpan delay = Link.BaseDelay + queued;
            if (_random.NextDouble() < Link.Reorder)
            {
                delay += TimeSpan.FromTicks((long)(_random.NextDouble() * Link.ReorderDelay.Ticks));
            }

            _inFlight.Enqueue(new Packet(s.Info, s.Payload, from == Client), (Now + delay, _order++));
        }
    }

    private sealed record Packet(TcpSegmentInfo Info, byte[] Payload, bool ToServer);

    /// <summary>One side: a connection, its application data and everything it wrote.</summary>
    internal sealed class Endpoint
    {
        private readonly TcpPairHarness _harness;
        private byte[] _toSend = Array.Empty<byte>();
        private int _appended;

        public Endpoint(string name, TcpPairHarness harness, TcpConnectionOptions options, uint iss, long sinkCapacity, bool toServer)
        {
            Name = name;
            _harness = harness;
            Source = new MemorySendSource();
            Sink = new MemoryReceiveSink(sinkCapacity);
            Out = new RecordingWriter(Source);
            Conn = new TcpConnection(options, Source, Sink, iss);
            Out.OnWrite = s => _harness.Transmit(this, s);
        }

        public string Name { get; }
        public TcpConnection Conn { get; }
        public MemorySendSource Source { get; }
        public MemoryReceiveSink Sink { get; }
        public RecordingWriter Out { get; }
        public bool Accepted { get; set; }
        public TcpEvents Events { get; private set; }
        public bool CloseAfterSend { get; set; }
        public bool Closed { get; private set; }
        public int SegmentsSent { get; private set; }

        /// <summary>Source buffer limit, like a host socket's receive queue.</summary>
        public int SourceLimit { get; set; } = 256 * 1024;

        public override string ToString() => Name;

        public void Send(byte[] data, bool close)
        {
            _toSend = data;
            _appended = 0;
            CloseAfterSend = close;
        }

        public void Application(TimeSpan now)
        {
            if (Conn.State is TcpState.Closed or TcpState.SynSent or TcpState.SynReceived)
            {
                return;
            }

            if (_appended < _toSend.Length)
            {
                int room = (int)Math.Max(0, SourceLimit - Source.Available);
                int n = Math.Min(room, _toSend.Length - _appended);
                Source.Append(_toSend.AsSpan(_appended, n));
                _appended += n;
            }

            bool peerFin = (Events & TcpEvents.PeerFinished) != 0;
            if (!Closed && _appended == _toSend.Length && (CloseAfterSend || (_harness.CloseOnPeerFin && peerFin)))
            {
                Closed = true;
                Conn.Close();
            }

            if (_harness.AutoDrain)
            {
                Sink.DrainAll();
            }
        }

        public void Collect()
        {
            Events |= Conn.TakeEvents();
            SegmentsSent += Out.Segments.Count;
            Out.Segments.Clear();
        }
    }
}
