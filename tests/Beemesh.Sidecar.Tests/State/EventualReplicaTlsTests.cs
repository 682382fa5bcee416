using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Beemesh.State.Api;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Eventual replicas over the real transport: loopback TCP with mutual TLS and the workload's SVIDs,
/// found through the store's directory. Their timers run on a fake clock that never advances, so
/// pushes and rounds happen only when the test calls them.
/// </summary>
public sealed class EventualReplicaTlsTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));
    private CertificateAuthority _authority = null!;
    private StrongStoreContext _kv = null!;

    public async Task InitializeAsync()
    {
        _authority = CertificateAuthority.LoadOrCreate(_dir.File("ca"));
        _kv = await ContextAsync("/ns/default/sa/kv", "kv.sock");
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

    private async Task<StrongStoreContext> ContextAsync(string path, string socket)
    {
        SpiffeId id = SpiffeId.FromParts(_authority.TrustDomain, path);
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(Environment.ProcessId, id));
        WorkloadApiServer server = await WorkloadApiServer.StartAsync(new WorkloadApiServerOptions { SocketPath = _dir.File(socket) }, _authority, workloads);
        _owned.Add(server);
        X509Source source = await X509Source.StartAsync(new WorkloadApiClient(_dir.File(socket)));
        _owned.Add(source);
        return new StrongStoreContext(_dir.File("state"), source, id);
    }

    private (EventualReplica Replica, EventualStateStore Api, EventualStateCounters Counters) Start(ulong id, StrongStoreContext? context = null)
    {
        var counters = new EventualStateCounters();
        EventualReplica replica = EventualReplica.Start(
            new EventualStore("statestore", id, _time), context ?? _kv, new EventualReplicationOptions(), counters, NullLoggerFactory.Instance, _time);
        _owned.Add(replica);
        return (replica, new EventualStateStore(replica.Replicator.Store, replica.Replicator), counters);
    }

    private static async Task SaveAsync(EventualStateStore store, string key, string value) =>
        Assert.Equal(StateWriteStatus.Applied, (await store.WriteAsync([StateOperation.Upsert("kv||" + key, Encoding.UTF8.GetBytes(value))], CancellationToken.None)).Status);

    private static string? Read(EventualStateStore store, string key) =>
        store.Store.Get("kv||" + key) is StateValue v ? Encoding.UTF8.GetString(v.Value) : null;

    [Fact]
    public async Task ReplicasOfOneWorkloadFindEachOtherAndReplicateOverMutualTls()
    {
        var (a, apiA, countersA) = Start(1);
        var (b, apiB, countersB) = Start(2);
        Assert.NotEqual(a.EndPoint, b.EndPoint);

        await SaveAsync(apiA, "k", "v1");
        await a.Replicator.FlushAsync(CancellationToken.None);
        Assert.Equal("v1", Read(apiB, "k"));
        Assert.Equal(1, countersA.EntriesPushed);
        Assert.Equal(1, countersB.EntriesMerged);

        // A write B never pushed, and a third replica started later: C's one round (with A and B,
        // in the directory's order) gets it everything; A's next round gets B's write.
        await SaveAsync(apiB, "other", "v2");
        var (c, apiC, _) = Start(3);
        await c.Replicator.RunRoundAsync(CancellationToken.None);
        Assert.Equal("v1", Read(apiC, "k"));
        Assert.Equal("v2", Read(apiC, "other"));
        await a.Replicator.RunRoundAsync(CancellationToken.None);
        Assert.Equal("v2", Read(apiA, "other"));
        Assert.Equal(0, countersA.RefusedFrames + countersB.RefusedFrames);
    }

    [Fact]
    public async Task AnotherWorkloadInTheSameDirectoryCanNeitherSendNorReceive()
    {
        var (a, apiA, countersA) = Start(1);
        StrongStoreContext other = await ContextAsync("/ns/default/sa/intruder", "intruder.sock");
        var (intruder, apiIntruder, intruderCounters) = Start(2, other with { Directory = _kv.Directory });

        await SaveAsync(apiIntruder, "k", "forged");
        await intruder.Replicator.FlushAsync(CancellationToken.None);
        await SaveAsync(apiA, "secret", "s");
        await a.Replicator.FlushAsync(CancellationToken.None);
        await a.Replicator.RunRoundAsync(CancellationToken.None);

        Assert.Null(Read(apiA, "k"));
        Assert.Null(Read(apiIntruder, "secret"));
        Assert.Equal(1, intruderCounters.FailedExchanges);
        Assert.Equal(2, countersA.FailedExchanges);
        Assert.Equal(0, countersA.EntriesReceived);
    }

    [Fact]
    public async Task ARequestIsMarkedWrittenOnlyOnceAConnectionToThePeerStands()
    {
        var (a, _, _) = Start(1);
        await using var link = new Beemesh.Sidecar.State.Replicas.ReplicaLink("test", _kv.Source, _kv.Identity, 1 << 20, NullLogger.Instance);

        // A port nobody listens on refuses the connection: the peer never got the request.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var closed = (System.Net.IPEndPoint)probe.LocalEndPoint!;
        probe.Close();
        var refused = new System.Runtime.CompilerServices.StrongBox<bool>();
        Assert.Null(await link.TrySendAsync(closed, (byte)EventualFrameKind.Digest, new byte[4], refused, CancellationToken.None));
        Assert.False(refused.Value);

        // A replica that takes the connection and then refuses the frame (an unknown kind) did get it.
        var sent = new System.Runtime.CompilerServices.StrongBox<bool>();
        Assert.Null(await link.TrySendAsync(a.EndPoint, 77, new byte[1], sent, CancellationToken.None));
        Assert.True(sent.Value);
    }

    [Theory]
    [InlineData(100 * 1024 * 1024, (byte)EventualFrameKind.Entries, 0)]
    [InlineData(4, (byte)EventualFrameKind.Digest, 3)]
    [InlineData(1, 77, 0)]
    public async Task ABadFrameIsRefusedCountedAndItsConnectionClosed(int length, byte kind, int bodyBytes)
    {
        var (a, apiA, counters) = Start(1);
        await SaveAsync(apiA, "k", "v");

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(a.EndPoint);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(SpiffeTls.CreateClientOptions(_kv.Source, _ => true));
        byte[] frame = new byte[5 + bodyBytes];
        BinaryPrimitives.WriteInt32LittleEndian(frame, length);
        frame[4] = kind;
        await tls.WriteAsync(frame);
        await tls.FlushAsync();

        // The replica closes the connection: the read ends without an answer (a clean end, or a
        // reset when the close found bytes unread).
        byte[] buffer = new byte[16];
        int read;
        try
        {
            read = await tls.ReadAsync(buffer);
        }
        catch (IOException)
        {
            read = 0;
        }

        Assert.Equal(0, read);
        Assert.Equal(1, counters.RefusedFrames);
        Assert.Equal("v", Read(apiA, "k"));
    }
}
