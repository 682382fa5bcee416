using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Beemesh.State.Eventual;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Eventual replicas over the real transport: loopback TCP with mutual TLS and the workload's SVIDs,
/// found through the store's directory. Their timers run on a fake clock that never advances, so
/// pushes and rounds happen only when the test calls them.
/// </summary>
public sealed class EventualReplicaTlsTests : EventualReplicaTestBase
{
    private StrongStoreContext _kv = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _kv = await ContextAsync("/ns/default/sa/kv", "kv.sock");
    }

    private async Task<StrongStoreContext> ContextAsync(string path, string socket)
    {
        SpiffeId id = SpiffeId.FromParts(Authority.TrustDomain, path);
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(Environment.ProcessId, id));
        Own(await WorkloadApiServer.StartAsync(new WorkloadApiServerOptions { SocketPath = Dir.File(socket) }, Authority, workloads));
        X509Source source = Own(await X509Source.StartAsync(new WorkloadApiClient(Dir.File(socket))));
        return new StrongStoreContext(Dir.File("state"), source, id);
    }

    private (EventualReplica Replica, EventualStateStore Api, EventualStateCounters Counters) Start(ulong id, StrongStoreContext? context = null) =>
        StartReplica(id, context ?? _kv);

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
