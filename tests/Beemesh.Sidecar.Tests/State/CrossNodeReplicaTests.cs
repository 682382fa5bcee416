using System.Net;
using System.Net.Security;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tests;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.State;
using Beemesh.Sidecar.State.Eventual;
using Beemesh.Sidecar.State.Replicas;
using Beemesh.Sidecar.State.Strong;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Sidecar.Tests.Tunnel;
using Beemesh.State.Eventual;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// Replicas of one workload on different nodes: found through the agent's routes (watched, not
/// polled), reached through the other node's tunnel server with the store's protocol (ALPN), and
/// refused unless the peer is the very same workload. Each "node" here is its own sidecar (tunnel
/// server, SVID) and its own state directory; replication runs only when the test calls it.
/// </summary>
public sealed class CrossNodeReplicaTests : EventualReplicaTestBase
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static WorkloadRecord Route(string node, string name, string ns, string id, int octet) => new()
    {
        Id = id,
        Name = name,
        Namespace = ns,
        SpiffeId = $"spiffe://example.org/ns/{ns}/sa/{name}",
        MeshAddress = $"10.200.{octet}.{id.Length}",
        TunnelEndpoint = $"10.9.0.{octet}:15008",
        Node = node,
        ServerName = TunnelServerName.For(name, ns, "example.org"),
    };

    private sealed class FixedDiscovery(params IPEndPoint[] peers) : IReplicaDiscovery
    {
        public IReadOnlyList<IPEndPoint> FindPeers() => peers;
    }

    /// <summary>Returns once <paramref name="done"/> holds, checked again at each change the directory's watch installs.</summary>
    private static async Task UntilAsync(AgentMeshDirectory directory, Func<bool> done)
    {
        using var patience = new CancellationTokenSource(Patience);
        while (true)
        {
            var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnChanged(object? sender, EventArgs e) => changed.TrySetResult();
            directory.Changed += OnChanged;
            try
            {
                if (done())
                {
                    return;
                }

                await changed.Task.WaitAsync(patience.Token);
            }
            finally
            {
                directory.Changed -= OnChanged;
            }
        }
    }

    [Fact]
    public async Task RemoteRoutesOfTheWorkloadAddAndRemovePeersOnePerNode()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16"));
        await directory.LoadAsync(CancellationToken.None);
        var sidecar = Own(await TestSidecar.StartAsync(Authority, Dir.File("kv.sock"), "/ns/default/sa/kv", IPAddress.Parse("10.200.0.1"), new StaticMeshDirectory()));
        var local = new IPEndPoint(IPAddress.Loopback, 40001);
        var discovery = new MeshReplicaDiscovery(new FixedDiscovery(local), new SidecarReplicaMesh(directory, sidecar.Server, "kv", "default"));
        var n2 = IPEndPoint.Parse("10.9.0.2:15008");
        var n3 = IPEndPoint.Parse("10.9.0.3:15008");

        Assert.Equal([local], discovery.FindPeers());

        // Two replicas on n2 (one peer: n2's tunnel port leads to one of them), and workloads of
        // another name or namespace, which are not replicas.
        agent.Host.Workloads.SetRemoteRoutes([
            Route("n2", "kv", "default", "a1", 2), Route("n2", "kv", "default", "a2", 2),
            Route("n3", "web", "default", "b1", 3), Route("n3", "kv", "prod", "b2", 3)]);
        await UntilAsync(directory, () => directory.RemoteWorkloads("web", "default").Count == 1);
        Assert.Equal([local, n2], discovery.FindPeers());
        Assert.Equal("kv.default.example.org", discovery.ServerNameOf(n2));
        Assert.Null(discovery.ServerNameOf(local));

        agent.Host.Workloads.SetRemoteRoutes([
            Route("n2", "kv", "default", "a1", 2), Route("n2", "kv", "default", "a2", 2), Route("n3", "kv", "default", "b3", 3)]);
        await UntilAsync(directory, () => directory.RemoteWorkloads("kv", "default").Count == 3);
        Assert.Equal([local, n2, n3], discovery.FindPeers());

        // n2's routes expire (their node stopped renewing the lease) or are withdrawn: n2 is no peer.
        agent.Host.Workloads.SetRemoteRoutes([Route("n3", "kv", "default", "b3", 3)]);
        await UntilAsync(directory, () => directory.RemoteWorkloads("kv", "default").Count == 1);
        Assert.Equal([local, n3], discovery.FindPeers());
        Assert.Null(discovery.ServerNameOf(n2));
    }

    /// <summary>A mesh whose other nodes the test names, serving on one test sidecar's tunnel server.</summary>
    private sealed class TestReplicaMesh(TestSidecar sidecar) : IReplicaMesh
    {
        public List<ReplicaNode> Nodes { get; } = [];

        public IReadOnlyList<ReplicaNode> RemoteNodes() => [.. Nodes];

        public IDisposable Serve(SslApplicationProtocol protocol, Func<SslStream, Task> serve) => sidecar.Server.ServeProtocol(protocol, serve);
    }

    private async Task<(TestSidecar Sidecar, TestReplicaMesh Mesh, EventualReplica Replica, EventualStateStore Api, EventualStateCounters Counters)> NodeAsync(
        string node, string path, ulong replicaId)
    {
        TestSidecar sidecar = Own(await TestSidecar.StartAsync(Authority, Dir.File(node + ".sock"), path, IPAddress.Parse("10.200.0." + replicaId), new StaticMeshDirectory()));
        var mesh = new TestReplicaMesh(sidecar);
        var context = new StrongStoreContext(Dir.File(node + "-state"), sidecar.Source, sidecar.Id) { Mesh = mesh };
        var (replica, api, counters) = StartReplica(replicaId, context);
        return (sidecar, mesh, replica, api, counters);
    }

    private static ReplicaNode NodeOf(string node, TestSidecar sidecar) => new(node, sidecar.Server.Endpoint, "kv.default." + sidecar.Id.TrustDomain);

    [Fact]
    public async Task AWriteOnOneNodeIsReadOnTheOtherThroughItsTunnelServer()
    {
        var a = await NodeAsync("a", "/ns/default/sa/kv", 1);
        var b = await NodeAsync("b", "/ns/default/sa/kv", 2);
        a.Mesh.Nodes.Add(NodeOf("b", b.Sidecar));
        b.Mesh.Nodes.Add(NodeOf("a", a.Sidecar));

        await SaveAsync(a.Api, "k", "v1");
        await a.Replica.Replicator.FlushAsync(CancellationToken.None);
        Assert.Equal("v1", Read(b.Api, "k"));

        // A write b never pushed reaches a by a's anti-entropy round.
        await SaveAsync(b.Api, "other", "v2");
        await a.Replica.Replicator.RunRoundAsync(CancellationToken.None);
        Assert.Equal("v2", Read(a.Api, "other"));
        Assert.Equal(0, a.Counters.FailedExchanges + b.Counters.FailedExchanges + a.Counters.RefusedFrames + b.Counters.RefusedFrames);
        Assert.Equal(0, a.Replica.RefusedPeers + b.Replica.RefusedPeers);
    }

    [Fact]
    public async Task AnotherWorkloadCanNeitherSendToNorReceiveFromAReplicaOfAnotherNode()
    {
        var a = await NodeAsync("a", "/ns/default/sa/kv", 1);
        var intruder = await NodeAsync("x", "/ns/default/sa/intruder", 2);
        await SaveAsync(a.Api, "secret", "s");

        // The intruder dials a's tunnel server with a's server name and store protocol, accepting any
        // server: a's tunnel server takes its SVID (a workload of the trust domain), but a's link
        // refuses it before reading anything, and counts it.
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await socket.ConnectAsync(a.Sidecar.Server.Endpoint);
            await using var tls = new SslStream(new System.Net.Sockets.NetworkStream(socket, ownsSocket: false));
            SslClientAuthenticationOptions options = Beemesh.Spiffe.X509.SpiffeTls.CreateClientOptions(intruder.Sidecar.Source, _ => true, "kv.default.example.org");
            options.ApplicationProtocols = [ReplicaLink.ProtocolFor("eventual", "statestore")];
            await tls.AuthenticateAsClientAsync(options);
            Assert.Equal(ReplicaLink.ProtocolFor("eventual", "statestore"), tls.NegotiatedApplicationProtocol);
            // No answer: the connection ends (cleanly, or with a reset that may already fail the write).
            int read;
            try
            {
                await ReplicaFrame.WriteAsync(tls, (byte)EventualFrameKind.Digest, EventualWire.EncodeDigest(intruder.Replica.Replicator.Store.BucketDigest()), CancellationToken.None);
                read = await tls.ReadAsync(new byte[16]);
            }
            catch (IOException)
            {
                read = 0;
            }

            Assert.Equal(0, read);
        }

        Assert.Equal(1, a.Replica.RefusedPeers);

        // A route that leads a to the intruder's tunnel server: a refuses the intruder's SVID in the
        // handshake, so nothing of a's reaches it, and nothing of the intruder's reaches a.
        await SaveAsync(intruder.Api, "k", "forged");
        a.Mesh.Nodes.Add(NodeOf("x", intruder.Sidecar));
        await SaveAsync(a.Api, "more", "m");
        // (The intruder's tunnel server completes its side of each handshake before a's refusal
        // arrives, so the intruder's link may count a too; that count is not awaited here.)
        await a.Replica.Replicator.FlushAsync(CancellationToken.None);
        Assert.Equal(2, a.Replica.RefusedPeers);
        await a.Replica.Replicator.RunRoundAsync(CancellationToken.None);
        Assert.Equal(3, a.Replica.RefusedPeers);
        Assert.Equal(2, a.Counters.FailedExchanges);
        Assert.Null(Read(a.Api, "k"));
        Assert.Null(Read(intruder.Api, "secret"));
        Assert.Null(Read(intruder.Api, "more"));
        Assert.Equal(0, intruder.Counters.EntriesReceived + a.Counters.EntriesReceived + a.Counters.EntriesPushed);
    }
}
