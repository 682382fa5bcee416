using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Beemesh.Sidecar.State.Replicas;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Tests.Tunnel;
using Beemesh.Spiffe.X509;
using Beemesh.State.Api;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Replicas of a strong store on different "nodes" in this process: each node is its own sidecar
/// (tunnel server, SVID) with its own state directory and so its own loopback address for the
/// store. A replica that sees a replica of another node in the routes joins that group through the
/// other node's tunnel server instead of bootstrapping one; the relay a node serves to others
/// splices only the workload itself, and only to an endpoint a replica of that node recorded. (In
/// one network namespace a relay cannot bind another node's endpoint, which the real replica holds,
/// so the Raft connections here go direct; the end-to-end test in node namespaces carries them
/// through the relays.)
/// </summary>
public sealed class StrongAcrossNodesTests : EventualReplicaTestBase
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>A mesh whose other nodes the test names, serving on one test sidecar's tunnel server.</summary>
    private sealed class TestReplicaMesh(TestSidecar sidecar) : IReplicaMesh
    {
        public List<ReplicaNode> Nodes { get; } = [];

        public IReadOnlyList<ReplicaNode> RemoteNodes() => [.. Nodes];

        public IDisposable Serve(SslApplicationProtocol protocol, Func<SslStream, Task> serve) => sidecar.Server.ServeProtocol(protocol, serve);
    }

    private async Task<(TestSidecar Sidecar, TestReplicaMesh Mesh)> NodeAsync(string node, string path, int octet)
    {
        TestSidecar sidecar = Own(await TestSidecar.StartAsync(Authority, Dir.File(node + ".sock"), path, IPAddress.Parse("10.200.0." + octet), new StaticMeshDirectory()));
        return (sidecar, new TestReplicaMesh(sidecar));
    }

    private async Task<StrongStore> StartStoreAsync(string node, TestSidecar sidecar, IReplicaMesh mesh) =>
        Own(await StrongStore.StartAsync(
            new StrongStoreOptions
            {
                Name = "statestore",
                Directory = Directory.CreateDirectory(Dir.File(node + "-store")).FullName,
                Source = sidecar.Source,
                Identity = sidecar.Id,
                LoggerFactory = NullLoggerFactory.Instance,
                OperationTimeout = Patience,
                JoinTimeout = Patience,
                Mesh = mesh,
            },
            CancellationToken.None));

    private static ReplicaNode NodeOf(string node, TestSidecar sidecar) => new(node, sidecar.Server.Endpoint, "kv.default." + sidecar.Id.TrustDomain);

    [Fact]
    public async Task AReplicaThatSeesAnotherNodesReplicaJoinsItsGroupInsteadOfBootstrappingOne()
    {
        var a = await NodeAsync("a", "/ns/default/sa/kv", 1);
        var b = await NodeAsync("b", "/ns/default/sa/kv", 2);
        StrongStore first = await StartStoreAsync("a", a.Sidecar, a.Mesh);
        a.Mesh.Nodes.Add(NodeOf("b", b.Sidecar));
        b.Mesh.Nodes.Add(NodeOf("a", a.Sidecar));
        StrongStore second = await StartStoreAsync("b", b.Sidecar, b.Mesh);

        // Each node's replicas listen on the node's own loopback address for the store, never 127.0.0.1.
        Assert.True(StrongRelay.IsNodeLoopback(first.RaftEndPoint.Address), first.RaftEndPoint.ToString());
        Assert.True(StrongRelay.IsNodeLoopback(second.RaftEndPoint.Address), second.RaftEndPoint.ToString());
        Assert.NotEqual(first.RaftEndPoint.Address, second.RaftEndPoint.Address);

        // One group of two: a write through either is read through the other, and applied by both.
        StateWriteResult written = await second.WriteAsync([StateOperation.Upsert("kv||k", Encoding.UTF8.GetBytes("from-b"))], CancellationToken.None);
        Assert.Equal(StateWriteStatus.Applied, written.Status);
        StateValue? read = (await first.GetAsync(["kv||k"], CancellationToken.None))[0];
        Assert.Equal("from-b", Encoding.UTF8.GetString(read!.Value));
        await first.WriteAsync([StateOperation.Upsert("kv||k", Encoding.UTF8.GetBytes("from-a"))], CancellationToken.None);
        Assert.Equal("from-a", Encoding.UTF8.GetString((await second.GetAsync(["kv||k"], CancellationToken.None))[0]!.Value));
        using var applied = new CancellationTokenSource(Patience);
        await first.WaitForAppliedAsync(first.LastApplied, applied.Token);
        await second.WaitForAppliedAsync(first.LastApplied, applied.Token);
        Assert.Equal("from-a", Encoding.UTF8.GetString(second.LocalGet("kv||k")!.Value));
        // (The joined replica learns the member list from the leader's appends, so only after them.)
        Assert.Equal(2, first.Members.Count);
        Assert.Contains(second.RaftEndPoint, first.Members);
        Assert.Equal(0, first.RefusedPeers + second.RefusedPeers);
    }

    [Fact]
    public async Task TheRelaySplicesOnlyTheWorkloadAndOnlyToAnEndpointAReplicaOfItsNodeRecorded()
    {
        var a = await NodeAsync("a", "/ns/default/sa/kv", 1);
        var twin = await NodeAsync("t", "/ns/default/sa/kv", 2);
        var intruder = await NodeAsync("x", "/ns/default/sa/intruder", 3);
        StrongStore store = await StartStoreAsync("a", a.Sidecar, a.Mesh);
        StrongRelay relay = store.Relay!;

        // Another workload: a's tunnel server takes its SVID (one of the trust domain), the relay
        // refuses it before reading anything.
        Assert.Null(await AskRelayAsync(a.Sidecar, intruder.Sidecar.Source, store.RaftEndPoint));
        Assert.Equal(1, relay.RefusedPeers);

        // The workload itself, naming an endpoint no replica of a's node recorded (127.0.0.1:22, or a
        // port of a's address that is not a replica's): refused, nothing spliced.
        Assert.Equal((byte)101, await AskRelayAsync(a.Sidecar, twin.Sidecar.Source, new IPEndPoint(IPAddress.Loopback, 22)));
        Assert.Equal((byte)101, await AskRelayAsync(a.Sidecar, twin.Sidecar.Source, new IPEndPoint(store.RaftEndPoint.Address, 1)));
        Assert.Equal(0, relay.Spliced);

        // The workload, naming a's Raft endpoint: spliced to it.
        Assert.Equal((byte)100, await AskRelayAsync(a.Sidecar, twin.Sidecar.Source, store.RaftEndPoint));
        Assert.Equal(1, relay.Spliced);
        Assert.Equal(1, relay.RefusedPeers);
    }

    /// <summary>Dials <paramref name="node"/>'s tunnel server with the relay's protocol and asks for <paramref name="target"/>; its answer's kind, or null when it closed the connection.</summary>
    private static async Task<byte?> AskRelayAsync(TestSidecar node, X509Source caller, IPEndPoint target)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(node.Server.Endpoint);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        SslClientAuthenticationOptions options = SpiffeTls.CreateClientOptions(caller, _ => true, "kv.default.example.org");
        SslApplicationProtocol protocol = ReplicaLink.ProtocolFor("strong-relay", "statestore");
        options.ApplicationProtocols = [protocol];
        await tls.AuthenticateAsClientAsync(options);
        Assert.Equal(protocol, tls.NegotiatedApplicationProtocol);
        try
        {
            await ReplicaFrame.WriteAsync(tls, 1, Encoding.UTF8.GetBytes(target.ToString()), CancellationToken.None);
            return await ReplicaFrame.ReadAsync(tls, 256, CancellationToken.None) is (byte kind, _) ? kind : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
