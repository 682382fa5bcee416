using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Sidecar.Tunnel;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>
/// Sidecars whose SVIDs come from the node CAs of two joined nodes (leaf → node CA → root): the
/// tunnel's mutual TLS works with the root as the only bundle, and refuses a node CA of another root.
/// </summary>
public sealed class CrossNodeTunnelTests : IAsyncLifetime
{
    private static readonly TimeSpan Functional = TimeSpan.FromSeconds(10);
    private readonly TempDirectory _dir = new();
    private readonly List<IAsyncDisposable> _sidecars = [];
    private readonly List<IDisposable> _authorities = [];

    /// <inheritdoc />
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        foreach (IAsyncDisposable sidecar in _sidecars)
        {
            await sidecar.DisposeAsync();
        }

        foreach (IDisposable authority in _authorities)
        {
            authority.Dispose();
        }

        _dir.Dispose();
    }

    [Fact]
    public async Task FlowBetweenWorkloadsOfTwoJoinedNodesGetsEcho()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);

        await using TunnelStream tunnel = await web.Outbound.OpenAsync(new IPEndPoint(api.MeshAddress, 8080));
        await tunnel.WriteAsync("hello node-2"u8.ToArray());
        await tunnel.FlushAsync();
        using var cancel = new CancellationTokenSource(Functional);
        byte[] echoed = new byte[12];
        await tunnel.ReadExactlyAsync(echoed, cancel.Token);
        Assert.Equal("hello node-2"u8.ToArray(), echoed);
        Assert.Contains((web.MeshAddress, 8080), api.Guest.Calls);
    }

    [Fact]
    public async Task FlowThroughTheDestinationNodesTunnelPortIsRoutedByServerNameAndStaysMutualTls()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);
        string serverName = Beemesh.Agent.Client.TunnelServerName.For("api", "default", root.TrustDomain);
        var asked = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var nodePort = new Beemesh.Agent.Tunnel.SniTunnelRouter(
            new IPEndPoint(IPAddress.Loopback, 0), name => { asked.Enqueue(name); return name == serverName ? api.Server.Endpoint : null; });
        nodePort.Start();
        // As the directory holds a remote route: the node's tunnel port and the workload's server name.
        directory.Add(new Beemesh.Sidecar.Mesh.MeshPeer(api.Id, nodePort.Endpoint, api.MeshAddress, serverName));

        await using TunnelStream tunnel = await web.Outbound.OpenAsync(new IPEndPoint(api.MeshAddress, 8080));
        await tunnel.WriteAsync("hello via node-2"u8.ToArray());
        await tunnel.FlushAsync();
        using var cancel = new CancellationTokenSource(Functional);
        byte[] echoed = new byte[16];
        await tunnel.ReadExactlyAsync(echoed, cancel.Token);
        Assert.Equal("hello via node-2"u8.ToArray(), echoed);
        Assert.Contains((web.MeshAddress, 8080), api.Guest.Calls);
        Assert.Equal([serverName], asked);
        Assert.Equal(1, nodePort.Counters.GetValueOrDefault("routed"));
    }

    [Fact]
    public async Task RemovingTheCallersNodeCutsItsLiveFlowOnTheServerAndRefusesNewOnes()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);
        var audits = new System.Collections.Concurrent.ConcurrentQueue<Beemesh.Sidecar.Inbound.AuditRecord>();
        api.Server.Connections.Audited += (_, record) => audits.Enqueue(record);
        await using TunnelStream tunnel = await OpenEchoAsync(web, api, "before");
        Assert.Equal(0, api.Server.Connections.RevokeFromRevokedNodes());

        directory.RevokeNode("node-3");
        Assert.Equal(0, api.Server.Connections.RevokeFromRevokedNodes());
        directory.RevokeNode("node-1");
        Assert.Equal(1, api.Server.Connections.RevokeFromRevokedNodes());

        Beemesh.Sidecar.Inbound.AuditRecord cut = Assert.Single(audits);
        Assert.Equal("revoked", cut.Action);
        Assert.Equal(Beemesh.Sidecar.Inbound.LiveConnectionRegistry.TriggerNodeRevoked, cut.Trigger);
        Assert.Contains("node node-1", cut.Reason);
        Assert.Equal(0, api.Server.Connections.Count);
        await AssertEndsAsync(tunnel);
        await AssertRefusedAsync(web, api);
    }

    [Fact]
    public async Task AFlowHandedOffByTheTunnelPortIsServedByTheSidecarAndCutWhenTheCallersNodeIsRemoved()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);
        string serverName = Beemesh.Agent.Client.TunnelServerName.For("api", "default", root.TrustDomain);
        string agentDirectory = _dir.File("agent");
        Directory.CreateDirectory(agentDirectory);
        await using var channels = new Beemesh.Agent.Tunnel.TunnelHandoffServer(
            Path.Combine(agentDirectory, Beemesh.Agent.Client.TunnelHandoff.SocketName), (id, pid) => id == "api-1" && pid == Environment.ProcessId ? null : "not this one");
        channels.Start();
        // The relay target is closed: a flow that works was handed off.
        await using var nodePort = new Beemesh.Agent.Tunnel.SniTunnelRouter(
            new IPEndPoint(IPAddress.Loopback, 0), name => name == serverName ? new IPEndPoint(IPAddress.Loopback, 9) : null)
        {
            HandOff = (_, connection) => channels.TrySend("api-1", connection),
        };
        nodePort.Start();
        using TunnelHandoffClient? handoff = await TunnelHandoffClient.OpenAsync(
            agentDirectory, "api-1", api.Server.ServeAccepted, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        Assert.NotNull(handoff);
        directory.Add(new Beemesh.Sidecar.Mesh.MeshPeer(api.Id, nodePort.Endpoint, api.MeshAddress, serverName));

        await using TunnelStream tunnel = await OpenEchoAsync(web, api, "handed off");
        Assert.Equal(1, nodePort.Counters.GetValueOrDefault("handed_off"));
        Assert.Equal(0, nodePort.Counters.GetValueOrDefault("relayed"));
        Assert.Equal(1, handoff.Received);
        Assert.Equal(0, nodePort.LiveConnections);

        // The sidecar holds the caller's certificate: removing the caller's node cuts the flow there.
        directory.RevokeNode("node-1");
        Assert.Equal(1, api.Server.Connections.RevokeFromRevokedNodes());
        await AssertEndsAsync(tunnel);
        await AssertRefusedAsync(web, api);
    }

    [Fact]
    public async Task WhenTheAgentClosesTheChannelTheFlowsItHandedOverAreCut()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);
        string serverName = Beemesh.Agent.Client.TunnelServerName.For("api", "default", root.TrustDomain);
        string agentDirectory = _dir.File("agent");
        Directory.CreateDirectory(agentDirectory);
        var channels = new Beemesh.Agent.Tunnel.TunnelHandoffServer(
            Path.Combine(agentDirectory, Beemesh.Agent.Client.TunnelHandoff.SocketName), (_, _) => null);
        channels.Start();
        await using var nodePort = new Beemesh.Agent.Tunnel.SniTunnelRouter(
            new IPEndPoint(IPAddress.Loopback, 0), name => name == serverName ? new IPEndPoint(IPAddress.Loopback, 9) : null)
        {
            HandOff = (_, connection) => channels.TrySend("api-1", connection),
        };
        nodePort.Start();
        // Asynchronous continuations: the test must not go on on the channel's own thread (which
        // completes this), or disposing the channel at the end would wait for its own thread.
        var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using TunnelHandoffClient? handoff = await TunnelHandoffClient.OpenAsync(
            agentDirectory, "api-1", api.Server.ServeAccepted, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None,
            () => { api.Server.AbortHandedOff(); gone.TrySetResult(); });
        Assert.NotNull(handoff);
        // One channel per workload: a second is refused while the first is open.
        Assert.Null(await TunnelHandoffClient.OpenAsync(
            agentDirectory, "api-1", _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None));
        directory.Add(new Beemesh.Sidecar.Mesh.MeshPeer(api.Id, nodePort.Endpoint, api.MeshAddress, serverName));
        await using TunnelStream tunnel = await OpenEchoAsync(web, api, "handed off");
        Assert.Equal(1, api.Server.HandedOffConnections);

        await channels.DisposeAsync();
        await gone.Task.WaitAsync(Functional);
        Assert.False(handoff.IsOpen);
        Assert.Equal(0, api.Server.HandedOffConnections);
        await AssertEndsAsync(tunnel);
    }

    [Fact]
    public async Task TheChannelCanBeDisposedFromItsOwnAgentGoneCallback()
    {
        string agentDirectory = _dir.File("agent");
        Directory.CreateDirectory(agentDirectory);
        var channels = new Beemesh.Agent.Tunnel.TunnelHandoffServer(
            Path.Combine(agentDirectory, Beemesh.Agent.Client.TunnelHandoff.SocketName), (_, _) => null);
        channels.Start();
        TunnelHandoffClient? handoff = null;
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handoff = await TunnelHandoffClient.OpenAsync(
            agentDirectory, "api-1", _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None,
            () =>
            {
                // On the channel's own thread: the dispose must not wait for that thread.
                handoff!.Dispose();
                disposed.TrySetResult();
            });
        Assert.NotNull(handoff);

        await channels.DisposeAsync();
        await disposed.Task.WaitAsync(Functional);
        Assert.False(handoff.IsOpen);
        handoff.Dispose(); // again, from another thread: nothing left to do
    }

    [Fact]
    public async Task AChannelForAnotherWorkloadIsRefusedAndItsConnectionsAreNotReceived()
    {
        string agentDirectory = _dir.File("agent");
        Directory.CreateDirectory(agentDirectory);
        await using var channels = new Beemesh.Agent.Tunnel.TunnelHandoffServer(
            Path.Combine(agentDirectory, Beemesh.Agent.Client.TunnelHandoff.SocketName), (id, _) => id == "api-1" ? null : "process did not register it");
        channels.Start();
        using TunnelHandoffClient? refused = await TunnelHandoffClient.OpenAsync(
            agentDirectory, "web-1", _ => throw new InvalidOperationException("no connection may arrive"), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        Assert.Null(refused);
        Assert.Equal(0, channels.Channels);
        using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        Assert.False(channels.TrySend("web-1", probe));
        // An agent without the socket: no channel, the agent relays.
        Assert.Null(await TunnelHandoffClient.OpenAsync(_dir.File("no-agent"), "api-1", _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None));
    }

    [Fact]
    public async Task RemovingTheServersNodeClosesTheCallersTunnelAndRefusesNewOnes()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);
        string serverName = Beemesh.Agent.Client.TunnelServerName.For("api", "default", root.TrustDomain);
        await using var nodePort = new Beemesh.Agent.Tunnel.SniTunnelRouter(
            new IPEndPoint(IPAddress.Loopback, 0), name => name == serverName ? api.Server.Endpoint : null);
        nodePort.Start();
        directory.Add(new Beemesh.Sidecar.Mesh.MeshPeer(api.Id, nodePort.Endpoint, api.MeshAddress, serverName));
        await using TunnelStream tunnel = await OpenEchoAsync(web, api, "before");
        Assert.Equal(0, web.Pool.CloseRevoked());

        directory.RevokeNode("node-2");
        Assert.Equal(1, web.Pool.CloseRevoked());
        Assert.Equal(0, web.Pool.CloseRevoked());
        await AssertEndsAsync(tunnel);
        await AssertRefusedAsync(web, api);
    }

    [Fact]
    public async Task RemovingTheServersNodeClosesEveryConnectionTheStreamLimitOpened()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(root, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory, maxStreamsPerConnection: 1);
        var tunnels = new List<TunnelStream>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                tunnels.Add(await OpenEchoAsync(web, api, $"flow {i}"));
            }

            Assert.Equal(3, web.Pool.OpenConnections); // one stream each
            Assert.Equal(2, web.Pool.Counters.StreamLimitConnections);

            directory.RevokeNode("node-2");
            Assert.Equal(3, web.Pool.CloseRevoked());
            Assert.Equal(0, web.Pool.OpenConnections);
            foreach (TunnelStream tunnel in tunnels)
            {
                await AssertEndsAsync(tunnel);
            }

            await AssertRefusedAsync(web, api);
        }
        finally
        {
            foreach (TunnelStream tunnel in tunnels)
            {
                await tunnel.DisposeAsync();
            }
        }
    }

    private static async Task<TunnelStream> OpenEchoAsync(TestSidecar from, TestSidecar to, string text)
    {
        TunnelStream tunnel = await from.Outbound.OpenAsync(new IPEndPoint(to.MeshAddress, 8080));
        byte[] sent = System.Text.Encoding.ASCII.GetBytes(text);
        await tunnel.WriteAsync(sent);
        await tunnel.FlushAsync();
        using var cancel = new CancellationTokenSource(Functional);
        byte[] echoed = new byte[sent.Length];
        await tunnel.ReadExactlyAsync(echoed, cancel.Token);
        Assert.Equal(sent, echoed);
        return tunnel;
    }

    /// <summary>The flow ends (an error or the end of the stream), well before the functional bound.</summary>
    private static async Task AssertEndsAsync(TunnelStream tunnel)
    {
        using var cancel = new CancellationTokenSource(Functional);
        try
        {
            int read = await tunnel.ReadAsync(new byte[16], cancel.Token);
            Assert.Equal(0, read);
        }
        catch (Exception e) when (e is IOException or HttpRequestException or ObjectDisposedException)
        {
            // Reset: the cut reached the caller.
        }

        Assert.False(cancel.IsCancellationRequested, "the flow was still open");
    }

    private static async Task AssertRefusedAsync(TestSidecar from, TestSidecar to)
    {
        int calls = to.Guest.Calls.Count;
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using TunnelStream again = await OpenEchoAsync(from, to, "after").WaitAsync(Functional);
        });
        Assert.Equal(calls, to.Guest.Calls.Count);
    }

    [Fact]
    public async Task WorkloadOfANodeJoinedToAnotherRootCannotOpenATunnel()
    {
        CertificateAuthority root = Own(CertificateAuthority.LoadOrCreate(_dir.File("first")));
        CertificateAuthority impostor = Own(CertificateAuthority.LoadOrCreate(_dir.File("impostor")));
        var directory = new StaticMeshDirectory();
        TestSidecar web = await StartAsync(Join(impostor, "node-1"), "/ns/default/sa/web", "10.200.0.4", directory);
        TestSidecar api = await StartAsync(Join(root, "node-2"), "/ns/default/sa/api", "10.200.0.5", directory);

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using TunnelStream tunnel = await web.Outbound.OpenAsync(new IPEndPoint(api.MeshAddress, 8080)).WaitAsync(Functional);
            await tunnel.WriteAsync("x"u8.ToArray());
            await tunnel.FlushAsync();
            using var cancel = new CancellationTokenSource(Functional);
            await tunnel.ReadExactlyAsync(new byte[1], cancel.Token);
        });
        Assert.Empty(api.Guest.Calls);
    }

    private async Task<TestSidecar> StartAsync(CertificateAuthority authority, string path, string meshAddress, StaticMeshDirectory directory, int maxStreamsPerConnection = 1000)
    {
        TestSidecar sidecar = await TestSidecar.StartAsync(
            authority, _dir.File($"w{_sidecars.Count}.sock"), path, IPAddress.Parse(meshAddress), directory, maxStreamsPerConnection: maxStreamsPerConnection);
        _sidecars.Add(sidecar);
        return sidecar;
    }

    // What the join exchange delivers, done in-process: keys made here, certificates from the root.
    private CertificateAuthority Join(CertificateAuthority root, string nodeName)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        (X509Certificate2 nodeCa, X509Certificate2 nodeSvid) = root.IssueNodeCertificates(nodeName, PublicKeyOf(caKey), PublicKeyOf(svidKey));
        string state = _dir.File(nodeName + "-" + _authorities.Count);
        using (nodeCa)
        using (nodeSvid)
        using (var credentials = new NodeCredentials(
            nodeName, root.TrustDomain, X509CertificateLoader.LoadCertificate(root.Root.RawData), nodeCa.CopyWithPrivateKey(caKey), nodeSvid.CopyWithPrivateKey(svidKey)))
        {
            NodeCredentialStore.Save(state, credentials);
        }

        return Own(CertificateAuthority.LoadOrCreate(state, root.TrustDomain));
    }

    private CertificateAuthority Own(CertificateAuthority authority)
    {
        _authorities.Add(authority);
        return authority;
    }

    private static PublicKey PublicKeyOf(ECDsa key) => new CertificateRequest("CN=unused", key, HashAlgorithmName.SHA256).PublicKey;
}
