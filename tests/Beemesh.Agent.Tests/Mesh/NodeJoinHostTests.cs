using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Hosting;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class NodeJoinHostTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-nj-").FullName;

    [Fact]
    public async Task JoinedAgentIssuesWithItsNodeCaAndRestartsWithoutToken()
    {
        await using AgentHost first = await AgentHost.StartAsync(new AgentOptions
        {
            StateDirectory = Path.Combine(_root, "a"),
            TrustDomain = "mesh.test",
            NodeName = "a",
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            TunnelPort = 0,
        });
        Assert.True(first.Authority.HoldsRoot);
        string token = CreateToken(first).ToString();
        var join = new EndPoint[] { first.NodeEndPoint! };

        var options = new AgentOptions { StateDirectory = Path.Combine(_root, "b"), NodeName = "b", Join = join, JoinToken = token };
        await using (AgentHost second = await AgentHost.StartAsync(options))
        {
            Assert.False(second.Authority.HoldsRoot);
            Assert.Equal("mesh.test", second.Authority.TrustDomain);
            Assert.Equal("mesh.test", options.TrustDomain);
            Assert.Equal("b", second.Node!.NodeName);
            Assert.Equal("b", NodeSvidValidator.Validate(second.Node.Svid, [first.Authority.Root], "mesh.test", DateTimeOffset.UtcNow, out _));
        }

        // A restart reuses the saved credentials: no token, no contact with the first node.
        await using (AgentHost again = await AgentHost.StartAsync(new AgentOptions { StateDirectory = Path.Combine(_root, "b") }))
        {
            Assert.Equal("b", again.Node!.NodeName);
            Assert.Equal("mesh.test", again.Authority.TrustDomain);
        }

        // The same token again is refused, and so is a taken name.
        JoinException reused = await Assert.ThrowsAsync<JoinException>(() => AgentHost.StartAsync(
            new AgentOptions { StateDirectory = Path.Combine(_root, "c"), NodeName = "c", Join = join, JoinToken = token }));
        Assert.Contains("already used", reused.Message, StringComparison.Ordinal);
        JoinException taken = await Assert.ThrowsAsync<JoinException>(() => AgentHost.StartAsync(
            new AgentOptions { StateDirectory = Path.Combine(_root, "d"), NodeName = "b", Join = join, JoinToken = CreateToken(first).ToString() }));
        Assert.Contains("node name b is already taken", taken.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListenWithoutNodeNameIsRefused()
    {
        ArgumentException e = await Assert.ThrowsAsync<ArgumentException>(() => AgentHost.StartAsync(
            new AgentOptions { StateDirectory = Path.Combine(_root, "x"), Listen = new IPEndPoint(IPAddress.Loopback, 0), TunnelPort = 0 }));
        Assert.Contains("--node-name", e.Message, StringComparison.Ordinal);
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

    private static JoinToken CreateToken(AgentHost first) => MeshNodes.CreateToken(first);
}
