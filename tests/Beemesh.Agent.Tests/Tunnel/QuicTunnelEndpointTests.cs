using System.Net;
using System.Net.Quic;
using System.Net.Sockets;
using Beemesh.Agent.Tests.Hosting;
using Beemesh.Agent.Tunnel;

namespace Beemesh.Agent.Tests.Tunnel;

/// <summary>Whether and where an agent serves the QUIC tunnel, and its counters in <c>/metrics</c>.</summary>
public sealed class QuicTunnelEndpointTests
{
    private const string SkipReason = "libmsquic not found: QUIC tests skipped; install libmsquic from Microsoft's package repository";
    private const string Family = "beemesh_agent_quic_tunnel_total";

    [Fact]
    public async Task WithQuicTurnedOffTheAgentServesAndAdvertisesTcpOnly()
    {
        await using var agent = await AgentFixture.StartAsync(configure: o =>
        {
            o.NodeName = "a";
            o.Listen = new IPEndPoint(IPAddress.Loopback, 0);
            o.TunnelPort = 0;
            o.Quic = false;
        });

        Assert.Null(agent.Host.QuicRouter);
        Assert.Contains("turned off", agent.Host.QuicOffReason);
        Assert.DoesNotContain(Family, await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
        Assert.All((await agent.Client.GetMembersAsync()).Nodes, n => Assert.Null(n.Quic));
    }

    [SkippableFact]
    public async Task WithoutLibmsquicTheAgentSaysWhyQuicIsOff()
    {
        Skip.If(QuicListener.IsSupported, "libmsquic is present here: this checks the agent without it");
        await using var agent = await AgentFixture.StartAsync(configure: o =>
        {
            o.NodeName = "a";
            o.Listen = new IPEndPoint(IPAddress.Loopback, 0);
            o.TunnelPort = 0;
        });

        Assert.Null(agent.Host.QuicRouter);
        Assert.Contains("libmsquic not found", agent.Host.QuicOffReason);
        Assert.DoesNotContain(Family, await agent.Client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task WithLibmsquicTheAgentServesQuicOnTheTunnelPortsNumberAndCountsInMetrics()
    {
        Skip.IfNot(QuicListener.IsSupported, SkipReason);
        await using var agent = await AgentFixture.StartAsync(configure: o =>
        {
            o.NodeName = "a";
            o.Listen = new IPEndPoint(IPAddress.Loopback, 0);
            o.TunnelPort = 0;
        });

        QuicTunnelRouter router = Assert.IsType<QuicTunnelRouter>(agent.Host.QuicRouter);
        Assert.Equal(agent.Host.TunnelEndPoint!.Port, router.Endpoint.Port);
        Assert.Null(agent.Host.QuicOffReason);
        Dictionary<string, double> samples = MeshMetricsTests.Parse(await agent.Client.GetMetricsAsync(), out HashSet<string> help, out Dictionary<string, string> types);
        Assert.Contains(Family, help);
        Assert.Equal("counter", types[Family]);
        foreach (string reason in QuicTunnelRouter.CounterNames)
        {
            Assert.Equal(0, samples[$"{Family}{{reason=\"{reason}\"}}"]);
        }

        Assert.Equal(0, samples["beemesh_agent_quic_tunnel_connections_active"]);
        Assert.Equal(router.Endpoint.ToString(), Assert.Single((await agent.Client.GetMembersAsync()).Nodes).Quic);
    }

    [SkippableFact]
    public async Task AQuicPortAskedForThatCannotBeBoundFailsTheStart()
    {
        Skip.IfNot(QuicListener.IsSupported, SkipReason);
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => AgentFixture.StartAsync(configure: o =>
        {
            o.NodeName = "a";
            o.Listen = new IPEndPoint(IPAddress.Loopback, 0);
            o.TunnelPort = 0;
            o.QuicPort = port;
        }));
        Assert.Contains($"udp 127.0.0.1:{port}", e.Message);
    }
}
