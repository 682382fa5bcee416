using System.Net;
using System.Text;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Beemesh.State.Api;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Replicas of a strong store in this process: real DotNext Raft groups over loopback TCP with
/// mutual TLS, each replica with its own log directory. Waits are on operations (which retry across
/// elections until their deadline) and on the log's apply notifications, never on a timer.
/// </summary>
public sealed class StrongStoreTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly TempDirectory _dir = new();
    private readonly List<IAsyncDisposable> _owned = [];
    private CertificateAuthority _authority = null!;
    private SpiffeId _api = null!;
    private X509Source _apiSource = null!;

    public async Task InitializeAsync()
    {
        _authority = CertificateAuthority.LoadOrCreate(_dir.File("ca"));
        (_api, _apiSource) = await IdentityAsync("/ns/default/sa/api", "api.sock");
    }

    public async Task DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        _authority.Dispose();
        _dir.Dispose();
    }

    private async Task<(SpiffeId Id, X509Source Source)> IdentityAsync(string path, string socket)
    {
        SpiffeId id = SpiffeId.FromParts(_authority.TrustDomain, path);
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(Environment.ProcessId, id));
        WorkloadApiServer server = await WorkloadApiServer.StartAsync(new WorkloadApiServerOptions { SocketPath = _dir.File(socket) }, _authority, workloads);
        _owned.Add(server);
        X509Source source = await X509Source.StartAsync(new WorkloadApiClient(_dir.File(socket)));
        _owned.Add(source);
        return (id, source);
    }

    private Task<StrongStore> StartReplicaAsync(
        TimeSpan? operationTimeout = null, TimeSpan? joinTimeout = null, X509Source? source = null, SpiffeId? identity = null, Func<IPEndPoint, IPEndPoint>? advertise = null) =>
        StrongStore.StartAsync(
            new StrongStoreOptions
            {
                Name = "statestore",
                Directory = _dir.File("store"),
                Source = source ?? _apiSource,
                Identity = identity ?? _api,
                LoggerFactory = NullLoggerFactory.Instance,
                OperationTimeout = operationTimeout ?? Patience,
                JoinTimeout = joinTimeout ?? Patience,
                Advertise = advertise,
            },
            CancellationToken.None);

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static async Task<StateValue?> GetAsync(StrongStore store, string key) => (await store.GetAsync([key], CancellationToken.None))[0];

    [Fact]
    public async Task ThreeReplicasServeOneLinearizableStoreAndAFollowerForwardsToTheLeader()
    {
        await using StrongStore a = await StartReplicaAsync();
        await using StrongStore b = await StartReplicaAsync();
        await using StrongStore c = await StartReplicaAsync();
        // Each start returned once the leader committed the new member; the member lists that RaftCluster
        // shows are updated after that, asynchronously, so they are not asserted here (they lagged in CI).

        StrongStore follower = new[] { a, b, c }.First(r => !r.IsLeader);
        StrongStore other = new[] { a, b, c }.First(r => r != follower);
        Assert.Equal(StateWriteStatus.Applied, (await follower.WriteAsync([StateOperation.Upsert("api||k", Bytes("v1"))], CancellationToken.None)).Status);
        StateValue read = (await GetAsync(other, "api||k"))!;
        Assert.Equal("v1", Encoding.UTF8.GetString(read.Value));
        Assert.Equal(read.ETag, (await GetAsync(follower, "api||k"))!.ETag);

        // First-write on a present key and a stale ETag fail wherever they are sent; the current ETag wins once.
        Assert.Equal(StateWriteStatus.ETagMismatch, (await other.WriteAsync([StateOperation.Upsert("api||k", Bytes("x"), concurrency: StateConcurrency.FirstWrite)], CancellationToken.None)).Status);
        Assert.Equal(StateWriteStatus.Applied, (await follower.WriteAsync([StateOperation.Upsert("api||k", Bytes("v2"), etag: read.ETag)], CancellationToken.None)).Status);
        Assert.Equal(StateWriteStatus.ETagMismatch, (await other.WriteAsync([StateOperation.Upsert("api||k", Bytes("v3"), etag: read.ETag)], CancellationToken.None)).Status);
        Assert.Equal("v2", Encoding.UTF8.GetString((await GetAsync(other, "api||k"))!.Value));
        Assert.True(follower.Forwarded > 0);
        Assert.Equal(0, a.RefusedPeers + b.RefusedPeers + c.RefusedPeers);
    }

    [Fact]
    public async Task AReplicaRestartedFromItsLogCatchesUpAndWithoutQuorumAWriteFailsInsteadOfHanging()
    {
        StrongStore a = await StartReplicaAsync(operationTimeout: TimeSpan.FromSeconds(3));
        StrongStore b = await StartReplicaAsync(operationTimeout: TimeSpan.FromSeconds(3));
        StrongStore c = await StartReplicaAsync(operationTimeout: TimeSpan.FromSeconds(3));
        var replicas = new List<StrongStore> { a, b, c };
        try
        {
            await a.WriteAsync([StateOperation.Upsert("api||k", Bytes("before"))], CancellationToken.None);
            StrongStore crashed = replicas.First(r => !r.IsLeader);
            await crashed.CrashAsync();
            replicas.Remove(crashed);

            // Two of three are a quorum: writes go on.
            Assert.Equal(StateWriteStatus.Applied, (await replicas[0].WriteAsync([StateOperation.Upsert("api||k", Bytes("while-down"))], CancellationToken.None)).Status);
            // The leader applied that write before answering: the highest applied index includes it.
            long index = replicas.Max(r => r.LastApplied);

            // The restarted replica takes the crashed one's directory and endpoint, and catches up from the leader.
            StrongStore restarted = await StartReplicaAsync(operationTimeout: TimeSpan.FromSeconds(3));
            replicas.Add(restarted);
            Assert.Equal(crashed.RaftEndPoint, restarted.RaftEndPoint);
            using (var patience = new CancellationTokenSource(Patience))
            {
                await restarted.WaitForAppliedAsync(index, patience.Token);
            }

            Assert.Equal("while-down", Encoding.UTF8.GetString(restarted.LocalGet("api||k")!.Value));

            // Two of three gone: no quorum, and the write fails with a clear error within its deadline.
            foreach (StrongStore gone in replicas.Where(r => r != restarted).ToList())
            {
                await gone.CrashAsync();
                replicas.Remove(gone);
            }

            StrongStoreUnavailableException e = await Assert.ThrowsAsync<StrongStoreUnavailableException>(
                () => restarted.WriteAsync([StateOperation.Upsert("api||k", Bytes("lost"))], CancellationToken.None));
            Assert.Contains("no quorum", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (StrongStore replica in replicas)
            {
                await replica.CrashAsync();
            }
        }
    }

    [Fact]
    public async Task ALeaderThatGoesSilentIsReplacedAndWhatItHeldIsAnsweredByTheNext()
    {
        // Every replica is reached through a relay of the test's: silencing the leader's relays and
        // stopping the leader leaves the others with connections to it that stay open and never
        // answer, and new connections that are accepted and never answered, as a stopped process or
        // a dropping firewall leaves them (a crash alone would close them, which is noticed at once).
        var relays = new List<SilenceableRelay>();
        IPEndPoint Relay(IPEndPoint target)
        {
            var relay = new SilenceableRelay(target);
            _owned.Add(relay);
            relays.Add(relay);
            return relay.EndPoint;
        }

        StrongStore a = await StartReplicaAsync(advertise: Relay);
        StrongStore b = await StartReplicaAsync(advertise: Relay);
        StrongStore c = await StartReplicaAsync(advertise: Relay);
        var replicas = new List<StrongStore> { a, b, c };
        try
        {
            Assert.Equal(StateWriteStatus.Applied, (await a.WriteAsync([StateOperation.Upsert("api||k", Bytes("before"))], CancellationToken.None)).Status);
            StrongStore leader = replicas.Single(r => r.IsLeader);
            long term = leader.Term;
            replicas.Remove(leader);
            (StrongStore reader, StrongStore writer) = (replicas[0], replicas[1]);

            // The writer's request goes over a connection to the leader it already holds (a write
            // made through it before), so the leader does receive it.
            Assert.Equal(StateWriteStatus.Applied, (await writer.WriteAsync([StateOperation.Upsert("api||k", Bytes("before"))], CancellationToken.None)).Status);
            SilenceableRelay leaderRaft = relays.Single(r => r.EndPoint.Equals(leader.RaftEndPoint));
            SilenceableRelay leaderForward = relays.Single(r => r.Target.Equals(leader.ForwardEndPoint));

            // A read and a write sent to the leader (it still leads) reach it and get no answer.
            leaderForward.Silence();
            Task<StateValue?[]> read = reader.GetAsync(["api||k"], CancellationToken.None);
            Task<StateWriteResult> write = writer.WriteAsync([StateOperation.Upsert("api||k", Bytes("held"))], CancellationToken.None);
            await leaderForward.HeldAsync(2).WaitAsync(Patience);

            // Then the leader goes silent on its Raft endpoint too, and stops.
            leaderRaft.Silence();
            await leader.CrashAsync();

            // The two others elect a leader between them; each request the silent one held is given
            // up once its replica learns of the change: the read is answered by the new leader, the
            // write fails with its outcome unknown (it could have been in the old leader's log).
            // Without that both would wait for their deadline (30 s here) and fail; with a connect
            // to the silent member allowed to outlast an election round, no round would ever end.
            Assert.Equal("before", Encoding.UTF8.GetString((await read)[0]!.Value));
            StrongStoreUnavailableException unknown = await Assert.ThrowsAsync<StrongStoreUnavailableException>(() => write);
            Assert.Contains("outcome is unknown", unknown.Message, StringComparison.Ordinal);

            // A write through either of the two is acknowledged and applied by both.
            Assert.Equal(StateWriteStatus.Applied, (await writer.WriteAsync([StateOperation.Upsert("api||k", Bytes("after"))], CancellationToken.None)).Status);
            long index = replicas.Max(r => r.LastApplied);
            using (var patience = new CancellationTokenSource(Patience))
            {
                foreach (StrongStore replica in replicas)
                {
                    await replica.WaitForAppliedAsync(index, patience.Token);
                    Assert.Equal("after", Encoding.UTF8.GetString(replica.LocalGet("api||k")!.Value));
                    Assert.True(replica.Term > term, $"term {replica.Term} is not past the silent leader's {term}");
                }
            }

            Assert.True(leaderRaft.Held > 0, "no replica asked the silent leader anything after it went silent");
        }
        finally
        {
            foreach (StrongStore replica in replicas)
            {
                await replica.CrashAsync();
            }
        }
    }

    [Fact]
    public async Task AnotherWorkloadCannotJoinTheGroupAndIsCounted()
    {
        await using StrongStore a = await StartReplicaAsync();
        await using StrongStore b = await StartReplicaAsync();
        (SpiffeId web, X509Source webSource) = await IdentityAsync("/ns/default/sa/web", "web.sock");

        // Same store directory (as if it found the group), different SVID: every TLS handshake is refused.
        await Assert.ThrowsAsync<StrongStoreUnavailableException>(
            () => StartReplicaAsync(joinTimeout: TimeSpan.FromSeconds(2), source: webSource, identity: web));
        Assert.True(a.RefusedPeers + b.RefusedPeers > 0);
        Assert.Equal(2, a.Members.Count);
        await a.WriteAsync([StateOperation.Upsert("api||k", Bytes("still"))], CancellationToken.None);
        Assert.Equal("still", Encoding.UTF8.GetString((await GetAsync(b, "api||k"))!.Value));
    }
}
