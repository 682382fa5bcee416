using System.Net;
using System.Text;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Replicas;
using Beemesh.Sidecar.Telemetry;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Replicas of an eventual store in one process, joined by an in-memory network that can cut links
/// (the transport's fault seam). Pushes and rounds are driven by explicit calls or by advancing a
/// fake clock and awaiting the work the timer started: nothing sleeps.
/// </summary>
public sealed class EventualReplicationTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>The in-memory network: peers by endpoint, and the links that are cut (both directions).</summary>
    private sealed class Network
    {
        public Dictionary<IPEndPoint, Replica> Replicas { get; } = [];

        public HashSet<(IPEndPoint, IPEndPoint)> Cut { get; } = [];

        public void Partition(IEnumerable<Replica> side, IEnumerable<Replica> other)
        {
            foreach (Replica a in side)
            {
                foreach (Replica b in other)
                {
                    Cut.Add((a.EndPoint, b.EndPoint));
                    Cut.Add((b.EndPoint, a.EndPoint));
                }
            }
        }
    }

    private sealed class Link(Network network, IPEndPoint self) : IReplicaTransport, IReplicaDiscovery
    {
        public int Sent { get; private set; }

        public IReadOnlyList<IPEndPoint> FindPeers() => [.. network.Replicas.Keys.Where(e => !e.Equals(self))];

        public async Task<(byte Kind, byte[] Body)?> TrySendAsync(IPEndPoint peer, byte kind, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
        {
            Sent++;
            if (network.Cut.Contains((self, peer)) || !network.Replicas.TryGetValue(peer, out Replica? target))
            {
                return null;
            }

            (byte, byte[])? answer = await target.Replicator.HandleAsync(kind, body.ToArray(), cancellationToken);
            if (answer is null)
            {
                target.Counters.CountRefusedFrame();
            }

            return answer;
        }
    }

    private sealed record Replica(IPEndPoint EndPoint, FakeTimeProvider Time, EventualReplicator Replicator, EventualStateCounters Counters)
    {
        public EventualStore Store => Replicator.Store;

        public void Write(string key, string? value) =>
            Assert.Equal(StateWriteStatus.Applied, new EventualStateStore(Store, Replicator).WriteAsync(
                [value is null ? StateOperation.Delete("kv||" + key) : StateOperation.Upsert("kv||" + key, Encoding.UTF8.GetBytes(value))],
                CancellationToken.None).Result.Status);

        public string? Read(string key) => Store.Get("kv||" + key) is StateValue v ? Encoding.UTF8.GetString(v.Value) : null;
    }

    private static Replica Add(Network network, int id, TimeSpan skew, EventualReplicationOptions? options = null)
    {
        var endpoint = new IPEndPoint(IPAddress.Loopback, 7000 + id);
        var time = new FakeTimeProvider(Start + skew);
        var store = new EventualStore("statestore", (ulong)id, time);
        var link = new Link(network, endpoint);
        var counters = new EventualStateCounters();
        var replicator = new EventualReplicator(store, link, link, options ?? new EventualReplicationOptions(), counters, NullLogger.Instance, time);
        var replica = new Replica(endpoint, time, replicator, counters);
        network.Replicas[endpoint] = replica;
        return replica;
    }

    private static string Dump(EventualStore store) => string.Join(";", store.Snapshot().Select(e =>
        $"{e.Key}={(e.Value is null ? "tomb" : Encoding.UTF8.GetString(e.Value))}@{e.Stamp.ToETag()}"));

    private static async Task FlushAllAsync(params Replica[] replicas)
    {
        foreach (Replica r in replicas)
        {
            await r.Replicator.FlushAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task APushReachesEveryPeerWithoutARound()
    {
        var net = new Network();
        Replica a = Add(net, 1, TimeSpan.Zero), b = Add(net, 2, TimeSpan.Zero), c = Add(net, 3, TimeSpan.Zero);
        a.Write("k", "v1");
        Assert.Null(b.Read("k"));

        await a.Replicator.FlushAsync(CancellationToken.None);

        Assert.Equal("v1", b.Read("k"));
        Assert.Equal("v1", c.Read("k"));
        Assert.Equal(2, a.Counters.EntriesPushed);
        Assert.Equal(1, b.Counters.EntriesMerged);
        Assert.Equal(0, a.Counters.DigestRounds);
    }

    [Fact]
    public async Task AfterAPartitionHealsOneRoundPerReplicaConvergesEveryReplicaToTheLastWriterWins()
    {
        var net = new Network();
        // Clocks disagree by a few milliseconds each way; the HLC stamps still order the writes.
        Replica a = Add(net, 1, TimeSpan.Zero), b = Add(net, 2, TimeSpan.FromMilliseconds(7)), c = Add(net, 3, TimeSpan.FromMilliseconds(-5));
        a.Write("shared", "before");
        a.Write("doomed", "alive");
        await FlushAllAsync(a);
        Assert.Equal("before", c.Read("shared"));

        net.Partition([a], [b, c]);
        a.Write("shared", "from-a");
        a.Write("only-a", "a");
        b.Write("only-b", "b");
        b.Write("doomed", null);
        c.Time.Advance(TimeSpan.FromMilliseconds(50));
        c.Write("shared", "from-c");
        await FlushAllAsync(a, b, c);

        // Pushes crossed within each side only.
        Assert.Equal("from-a", a.Read("shared"));
        Assert.Equal("from-c", b.Read("shared"));
        Assert.Null(a.Read("only-b"));
        Assert.Null(c.Read("doomed"));
        Assert.Equal("alive", a.Read("doomed"));
        Assert.True(a.Counters.FailedExchanges >= 2);

        // Rounds while partitioned repair nothing across the cut.
        await a.Replicator.RunRoundAsync(CancellationToken.None);
        Assert.Null(a.Read("only-b"));

        net.Cut.Clear();
        long roundsBefore = a.Counters.DigestRounds + b.Counters.DigestRounds + c.Counters.DigestRounds;
        await a.Replicator.RunRoundAsync(CancellationToken.None);
        await b.Replicator.RunRoundAsync(CancellationToken.None);
        await c.Replicator.RunRoundAsync(CancellationToken.None);

        Assert.Equal(6, a.Counters.DigestRounds + b.Counters.DigestRounds + c.Counters.DigestRounds - roundsBefore);
        Assert.Equal(Dump(a.Store), Dump(b.Store));
        Assert.Equal(Dump(a.Store), Dump(c.Store));
        Assert.Equal(a.Store.BucketDigest(), c.Store.BucketDigest());

        // The LWW winner: C's write carries the greatest stamp (its clock ran 50 ms on).
        foreach (Replica r in new[] { a, b, c })
        {
            Assert.Equal("from-c", r.Read("shared"));
            Assert.Equal("a", r.Read("only-a"));
            Assert.Equal("b", r.Read("only-b"));
            Assert.Null(r.Read("doomed"));
        }

        // Converged replicas exchange digests and nothing else.
        long received = a.Counters.EntriesReceived + b.Counters.EntriesReceived + c.Counters.EntriesReceived;
        await a.Replicator.RunRoundAsync(CancellationToken.None);
        await b.Replicator.RunRoundAsync(CancellationToken.None);
        Assert.Equal(received, a.Counters.EntriesReceived + b.Counters.EntriesReceived + c.Counters.EntriesReceived);
    }

    [Fact]
    public async Task AReplicaThatMissedEverythingCatchesUpInOneRound()
    {
        var net = new Network();
        Replica a = Add(net, 1, TimeSpan.Zero);
        for (int i = 0; i < 500; i++)
        {
            a.Write("k" + i, "v" + i);
        }

        a.Write("k7", null);
        Replica late = Add(net, 2, TimeSpan.Zero);
        await late.Replicator.RunRoundAsync(CancellationToken.None);

        Assert.Equal(Dump(a.Store), Dump(late.Store));
        Assert.Equal("v499", late.Read("k499"));
        Assert.Null(late.Read("k7"));
        Assert.Equal(500, late.Counters.EntriesMerged);
    }

    [Fact]
    public async Task FrameLimitsSpreadABigRepairOverABoundedNumberOfRounds()
    {
        var net = new Network();
        var small = new EventualReplicationOptions { MaxEntriesPerFrame = 50 };
        Replica a = Add(net, 1, TimeSpan.Zero, small);
        Replica b = Add(net, 2, TimeSpan.Zero, small);
        for (int i = 0; i < 400; i++)
        {
            (i % 2 == 0 ? a : b).Write("k" + i, "v" + i);
        }

        // No pushes: only rounds repair, at most 50 entries (and whole buckets of stamps) a frame.
        int rounds = 0;
        while (Dump(a.Store) != Dump(b.Store))
        {
            await a.Replicator.RunRoundAsync(CancellationToken.None);
            rounds++;
            Assert.True(rounds <= 40, $"not converged after {rounds} rounds");
        }

        Assert.Equal(400, b.Store.Count);
        Assert.InRange(rounds, 4, 40);
    }

    [Fact]
    public async Task TheTimersPushAfterTheDelayAndRunARoundEveryInterval()
    {
        var net = new Network();
        var options = new EventualReplicationOptions { PushDelay = TimeSpan.FromMilliseconds(5), AntiEntropyInterval = TimeSpan.FromSeconds(1) };
        Replica a = Add(net, 1, TimeSpan.Zero, options);
        Replica b = Add(net, 2, TimeSpan.Zero, options);
        await using (a.Replicator)
        {
            a.Replicator.Start();
            a.Write("k", "pushed");
            Assert.Null(b.Read("k"));
            a.Time.Advance(TimeSpan.FromMilliseconds(5));
            await a.Replicator.LastTimedPush;
            Assert.Equal("pushed", b.Read("k"));

            // Written on B, never pushed (B's timers are not running): A's next round pulls it.
            b.Write("other", "pulled");
            Assert.Equal(0, a.Counters.DigestRounds);
            a.Time.Advance(TimeSpan.FromSeconds(1));
            await a.Replicator.LastTimedRound;
            Assert.Equal(1, a.Counters.DigestRounds);
            Assert.Equal("pulled", a.Read("other"));
        }
    }

    [Fact]
    public async Task MalformedOrUnknownFramesAreRefusedAndChangeNothing()
    {
        var net = new Network();
        Replica a = Add(net, 1, TimeSpan.Zero);
        a.Write("k", "v");
        string before = Dump(a.Store);

        Assert.Null(await a.Replicator.HandleAsync(99, [], CancellationToken.None));
        Assert.Null(await a.Replicator.HandleAsync((byte)EventualFrameKind.Digest, [1, 2, 3], CancellationToken.None));
        Assert.Null(await a.Replicator.HandleAsync((byte)EventualFrameKind.Entries, [0xFF, 0xFF, 0xFF, 0xFF], CancellationToken.None));
        byte[] tooMany = EventualWire.EncodeEntries([.. Enumerable.Range(0, 4097).Select(i => new StateEntry("kv||x" + i, [1], new HybridTimestamp(1, 9), 0))], []);
        Assert.Null(await a.Replicator.HandleAsync((byte)EventualFrameKind.Entries, tooMany, CancellationToken.None));

        Assert.Equal(before, Dump(a.Store));
    }

    [Fact]
    public void TheAntiEntropyIntervalMustBeShorterThanTheTombstoneGrace()
    {
        var store = new EventualStore("s", 1, TimeProvider.System, new EventualStoreOptions { TombstoneGrace = TimeSpan.FromSeconds(1) });
        var link = new Link(new Network(), new IPEndPoint(IPAddress.Loopback, 1));
        Assert.Throws<ArgumentException>(() => new EventualReplicator(
            store, link, link, new EventualReplicationOptions { AntiEntropyInterval = TimeSpan.FromSeconds(1) },
            new EventualStateCounters(), NullLogger.Instance, TimeProvider.System));
    }
}
