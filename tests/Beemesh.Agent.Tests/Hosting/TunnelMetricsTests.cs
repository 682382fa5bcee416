using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Beemesh.Agent.Tunnel;

namespace Beemesh.Agent.Tests.Hosting;

/// <summary>The tunnel port's counters as the agent's <c>/metrics</c> shows them.</summary>
public sealed class TunnelMetricsTests
{
    private const string Family = "beemesh_agent_tunnel_connections_total";

    [Fact]
    public async Task RefusedTunnelConnections_AreCountedByReasonInMetrics()
    {
        await using var agent = await AgentFixture.StartAsync(configure: o =>
        {
            o.NodeName = "a";
            o.Listen = new IPEndPoint(IPAddress.Loopback, 0);
            o.TunnelPort = 0;
        });
        IPEndPoint tunnel = agent.Host.TunnelEndPoint!;

        Dictionary<string, double> samples = MeshMetricsTests.Parse(await agent.Client.GetMetricsAsync(), out HashSet<string> help, out Dictionary<string, string> types);
        Assert.Contains(Family, help);
        Assert.Equal("counter", types[Family]);
        Assert.Equal("gauge", types["beemesh_agent_tunnel_connections_active"]);
        foreach (string reason in SniTunnelRouter.CounterNames)
        {
            Assert.Equal(0, samples[Sample(reason)]);
        }

        // Not a TLS ClientHello: the router counts, then closes.
        using (var plain = new TcpClient())
        {
            await plain.ConnectAsync(tunnel);
            await plain.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
            await ReadToCloseAsync(plain);
        }

        // A ClientHello naming no workload of this node.
        using (var caller = new TcpClient())
        {
            await caller.ConnectAsync(tunnel);
            using var tls = new SslStream(caller.GetStream(), false, (_, _, _, _) => true);
            await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "nobody.default.example.org" }));
        }

        // An address refused as that of a removed node: closed at accept.
        Assert.Equal(0, agent.Host.TunnelRouter!.RefusePeers(new HashSet<IPAddress> { IPAddress.Loopback }));
        using (var revoked = new TcpClient())
        {
            try
            {
                // The reset can come while the connect completes.
                await revoked.ConnectAsync(tunnel);
                await ReadToCloseAsync(revoked);
            }
            catch (SocketException)
            {
            }
        }

        samples = MeshMetricsTests.Parse(await agent.Client.GetMetricsAsync(), out _, out _);
        Assert.Equal(1, samples[Sample("refused_malformed")]);
        Assert.Equal(1, samples[Sample("refused_unknown_name")]);
        Assert.Equal(1, samples[Sample("refused_revoked_peer")]);
        Assert.Equal(0, samples[Sample("routed")]);
        Assert.Equal(0, samples[Sample("cut_revoked_peer")]);
        Assert.Equal(0, samples["beemesh_agent_tunnel_connections_active"]);
    }

    [Fact]
    public async Task AnAgentWithoutListen_ServesItsTunnelPortOnLoopbackWithItsFamily()
    {
        // A node alone still takes connections for the sidecars it cannot dial (pods'), on loopback only.
        await using var agent = await AgentFixture.StartAsync();
        Assert.True(IPAddress.IsLoopback(agent.Host.TunnelEndPoint!.Address));
        Assert.Equal(agent.Host.TunnelEndPoint.ToString(), agent.Host.Workloads.HandoffEndpoint);
        Assert.Contains(Sample("refused_unknown_name") + " 0", await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    private static string Sample(string reason) => $"{Family}{{reason=\"{reason}\"}}";

    // Reads until the router closes the connection (end of stream or reset); it counts before closing.
    private static async Task ReadToCloseAsync(TcpClient client)
    {
        var buffer = new byte[256];
        try
        {
            while (await client.GetStream().ReadAsync(buffer) > 0)
            {
            }
        }
        catch (IOException)
        {
            // reset by the router
        }
    }
}
