using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Join;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class OverlayHostTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-ov-").FullName;

    [Fact]
    public async Task ThreeJoinedAgentsLinkAndHoldEachOthersNodeRecords()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        await using AgentHost third = await Start("c", [first.NodeEndPoint!], CreateToken(first));

        foreach (AgentHost host in new[] { first, second, third })
        {
            using var client = new AgentClient(host.Options.StateDirectory);
            MembersReport report = await WaitForAsync(host, client, r => r.Nodes.Count == 3 && r.Active.Count == 2);
            Assert.Equal(["a", "b", "c"], report.Nodes.Select(n => n.Name));
            Assert.All(report.Nodes, n => Assert.Equal("alive", n.State));
            Assert.Equal(host.Node!.NodeName, report.Node);
            Assert.DoesNotContain(host.Node.NodeName, report.Active);
        }

        Assert.True(first.Overlay!.Counters.GetValueOrDefault("records_accepted") >= 3);

        // A workload registered on c resolves on a, marked remote with its node, and shows in a's watch.
        using var onC = new AgentClient(third.Options.StateDirectory);
        WorkloadRecord registered = await onC.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"));
        Assert.Null(registered.Node);
        using var onA = new AgentClient(first.Options.StateDirectory);
        await ChangeWait.UntilAsync(first.Workloads, () => first.Workloads.Resolve("web.shop") is not null);
        ServiceRecord? service = await onA.ResolveAsync("web.shop.svc.cluster.local");
        Assert.NotNull(service);
        Assert.Equal(registered.MeshAddress, service.MeshAddress);
        WorkloadRecord resolved = Assert.Single(service.Replicas);
        Assert.Equal("c", resolved.Node);
        Assert.Equal(registered.SpiffeId, resolved.SpiffeId);
        Assert.Equal(registered.MeshAddress, resolved.MeshAddress);
        Assert.Equal(0, resolved.Pid);
        // A remote route is reached through its node's tunnel port, by server name: the replica (its id on c), then the name.
        Assert.Equal(third.TunnelEndPoint!.ToString(), resolved.TunnelEndpoint);
        Assert.Equal($"{registered.Id}.web.shop.mesh.test", resolved.ServerName);
        // c advertises QUIC (h3 and its UDP endpoint) only where libmsquic loads; the route carries it.
        if (Beemesh.Agent.Tunnel.QuicTunnelRouter.IsSupported)
        {
            Assert.NotNull(third.QuicRouter);
            Assert.Equal(third.TunnelEndPoint.Port, third.QuicRouter.Endpoint.Port);
            Assert.Equal(third.QuicRouter.Endpoint.ToString(), resolved.Quic);
            Assert.Equal(resolved.Quic, (await onA.GetMembersAsync()).Nodes.Single(n => n.Name == "c").Quic);
        }
        else
        {
            Assert.Null(third.QuicRouter);
            Assert.Contains("libmsquic not found", third.QuicOffReason);
            Assert.Null(resolved.Quic);
            Assert.All((await onA.GetMembersAsync()).Nodes, n => Assert.Null(n.Quic));
        }

        Assert.Contains((await onA.WatchWorkloadsAsync(null, 0, TimeSpan.FromSeconds(1))).Workloads, w => w.Name == "web" && w.Node == "c");
        Assert.Empty(first.Workloads.List());

        // Unregistering withdraws the route everywhere (a signed tombstone).
        await onC.UnregisterWorkloadAsync(registered.Id);
        await ChangeWait.UntilAsync(first.Workloads, () => first.Workloads.Resolve("web.shop") is null);

        Assert.Null(first.Workloads.Resolve("web.shop"));

        // A policy applied on b reaches a and c, at the same mesh version.
        using var onB = new AgentClient(second.Options.StateDirectory);
        await onB.ApplyPoliciesAsync(DenyAll);
        using var onCAgain = new AgentClient(third.Options.StateDirectory);
        foreach ((AgentHost host, AgentClient client) in new[] { (first, onA), (third, onCAgain) })
        {
            await ChangeWait.UntilAsync(host.Policies, () => host.Policies.Snapshot().Policies.Count > 0);
            PolicySet set = await client.ListPoliciesAsync();
            Assert.Equal("deny-all", Assert.Single(set.Policies).Name);
        }

        string? version = (await onB.GetMembersAsync()).PolicyVersion;
        Assert.NotNull(version);
        Assert.Equal(version, (await WaitForAsync(first, onA, r => r.PolicyVersion == version)).PolicyVersion);
        Assert.Equal(version, (await WaitForAsync(third, onCAgain, r => r.PolicyVersion == version)).PolicyVersion);
        Assert.Contains("beemesh_overlay_policy_sets_applied_total 1\n", await onA.GetMetricsAsync(), StringComparison.Ordinal);
    }

    private const string DenyAll = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-all, namespace: shop}
        spec: {action: DENY, rules: [{}]}
        """;

    [Fact]
    public async Task MembersWithoutOverlayAnswersWhy()
    {
        await using AgentHost alone = await AgentHost.StartAsync(new AgentOptions { StateDirectory = Path.Combine(_root, "x") });
        using var client = new AgentClient(alone.Options.StateDirectory);
        AgentApiException e = await Assert.ThrowsAsync<AgentApiException>(() => client.GetMembersAsync());
        Assert.Contains("--listen", e.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task TheMembersWatchAnswersAtTheOverlaysNextChange()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        using var client = new AgentClient(first.Options.StateDirectory);
        MembersReport alone = await client.GetMembersAsync();
        Assert.Equal(["a"], alone.Nodes.Select(n => n.Name));

        // Opened before the second node exists, so its joining (or a change before it) answers the watch.
        Task<MembersReport> watch = client.WatchMembersAsync(alone.ChangeVersion, TimeSpan.FromSeconds(30));
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        MembersReport changed = await watch;
        Assert.True(changed.ChangeVersion > alone.ChangeVersion, $"the watch answered at version {changed.ChangeVersion}, not past {alone.ChangeVersion}");

        // Followed from change to change, the report comes to show the second node.
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // keeps a broken build from hanging; measures nothing
        MembersReport report = changed;
        while (!report.Nodes.Any(n => n.Name == "b"))
        {
            report = await client.WatchMembersAsync(report.ChangeVersion, TimeSpan.FromSeconds(30), patience.Token);
        }

        Assert.Equal(["a", "b"], report.Nodes.Select(n => n.Name));
    }

    // The members report is read again at each change of the node's overlay (views, records, counters), never on a timer.
    private static async Task<MembersReport> WaitForAsync(AgentHost host, AgentClient client, Func<MembersReport, bool> done)
    {
        MembersReport report = await client.GetMembersAsync();
        await ChangeWait.UntilAsync(host.Overlay!, async () => done(report = await client.GetMembersAsync()));
        return report;
    }

    [Fact]
    public async Task TheTunnelPortRoutesByServerNameToThisNodesWorkloadAndTheNodeRecordCarriesIt()
    {
        await using AgentHost first = await Start("a", join: null, token: null);
        await using AgentHost second = await Start("b", [first.NodeEndPoint!], CreateToken(first));
        Assert.NotNull(second.TunnelEndPoint);
        Assert.NotEqual(second.NodeEndPoint!.Port, second.TunnelEndPoint!.Port);

        // Every node learns the other's tunnel endpoint from its node record.
        using (var client = new AgentClient(first.Options.StateDirectory))
        {
            MembersReport report = await WaitForAsync(first, client, r => r.Nodes.Any(n => n.Name == "b" && n.Tunnel is not null));
            Assert.Equal(second.TunnelEndPoint.ToString(), report.Nodes.Single(n => n.Name == "b").Tunnel);
        }

        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=web", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using X509Certificate2 ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        using X509Certificate2 cert = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
        using var backend = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        backend.Start();
        Assert.NotNull(second.Workloads.Add(new WorkloadRegistration
        {
            Name = "web",
            Namespace = "default",
            Pid = Environment.ProcessId,
            TunnelEndpoint = backend.LocalEndpoint.ToString(),
        }));

        Task serve = Task.Run(async () =>
        {
            using System.Net.Sockets.TcpClient conn = await backend.AcceptTcpClientAsync();
            using var tls = new System.Net.Security.SslStream(conn.GetStream());
            await tls.AuthenticateAsServerAsync(new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = cert });
            await tls.WriteAsync("page"u8.ToArray());
            await tls.ShutdownAsync();
        });

        using (var caller = new System.Net.Sockets.TcpClient())
        {
            await caller.ConnectAsync(second.TunnelEndPoint);
            using var tls = new System.Net.Security.SslStream(caller.GetStream(), false, (_, _, _, _) => true);
            await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions { TargetHost = TunnelServerName.For("web", "default", "mesh.test") });
            var page = new byte[4];
            await tls.ReadExactlyAsync(page);
            Assert.Equal("page"u8.ToArray(), page);
        }

        await serve;
        Assert.Equal(1, second.TunnelRouter!.Counters.GetValueOrDefault("routed"));

        // A workload of another node, of another trust domain, or not registered is not reachable here.
        foreach (string name in new[] { "web.default.other.test", "api.default.mesh.test", "web.default" })
        {
            using var caller = new System.Net.Sockets.TcpClient();
            await caller.ConnectAsync(second.TunnelEndPoint);
            using var tls = new System.Net.Security.SslStream(caller.GetStream(), false, (_, _, _, _) => true);
            await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions { TargetHost = name }));
        }

        Assert.Equal(3, second.TunnelRouter.Counters.GetValueOrDefault("refused_unknown_name"));
        Assert.Equal(1, second.TunnelRouter.Counters.GetValueOrDefault("routed"));
    }

    private Task<AgentHost> Start(string name, EndPoint[]? join, string? token) => MeshNodes.StartAsync(_root, name, join, token);

    private static string CreateToken(AgentHost first) => MeshNodes.CreateToken(first).ToString();
}
