using System.Diagnostics;
using System.Net.Quic;
using Beemesh.EndToEnd.Tests.Support;

namespace Beemesh.EndToEnd.Tests.Overlay;

/// <summary>
/// The tunnel across nodes over QUIC, on two agents in two namespaces (the fixture of
/// <see cref="FourNodeMeshTests"/>): node 2 advertises QUIC in its node record; a <c>beemesh run</c>
/// client on node 1 holds a stream to a workload on node 2 over QUIC (its sidecar's metrics count the
/// connection as <c>quic</c>, node 2's QUIC endpoint counts it routed, its TCP tunnel port nothing),
/// a second client with <c>BEEMESH_TUNNEL_QUIC=off</c> goes over TCP, and a DENY policy cuts the
/// QUIC stream on both sides as it cuts a TCP one. Skipped, saying why, without libmsquic.
/// </summary>
public sealed partial class FourNodeMeshTests
{
    private const string QuicSkipReason = "libmsquic not found: QUIC tests skipped; install libmsquic from Microsoft's package repository";

    [SkippableFact]
    public async Task A_call_across_nodes_goes_over_quic_where_both_ends_run_it_and_a_policy_cuts_it()
    {
        BeemeshEnvironment.RequireReady("ip", "ncat", "ss", "timeout");
        // The test process and the beemesh processes it starts find libmsquic the same way.
        Skip.IfNot(QuicConnection.IsSupported, QuicSkipReason);
        _net = BridgedNamespaces.Create(2);
        var wait = TimeSpan.FromSeconds(60);
        StartAgent(0, token: null);
        Assert.True(await WaitServingAsync(0), "agent 1 did not start");
        StartAgent(1, await CreateTokenAsync());
        Assert.True(await WaitServingAsync(1), "agent 2 did not start");
        await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => AliveCount(text) == 2, wait);

        // Node 2's record advertises its QUIC endpoint (the tunnel port's number, over UDP).
        string quicEndpoint = $"{BridgedNamespaces.Address(1)}:15008";
        string members = await WaitForAsync(0, () => Cli("members", "--agent", Dir(0)), text => text.Contains("quic " + quicEndpoint, StringComparison.Ordinal), wait);
        output.WriteLine(members);
        Assert.Contains("quic " + quicEndpoint, members);

        await using var web = BeemeshRun.Start(["--agent", Dir(1), "--name", "web", "--port", "8080/tcp", "--port", "8081/tcp"], StreamingServer, networkNamespace: _net.Names[1]);
        Assert.True(await web.WaitForLineAsync("server-ready", wait), web.Stdout + web.Stderr);
        await using var client = BeemeshRun.Start(["--agent", Dir(0), "--name", "client"], StreamingClient("web.default"), networkNamespace: _net.Names[0]);
        await using var tcpClient = BeemeshRun.Start(["--agent", Dir(0), "--name", "tcpclient"], StreamingClient("web.default"),
            new Dictionary<string, string> { ["BEEMESH_TUNNEL_QUIC"] = "off" }, networkNamespace: _net.Names[0]);
        Assert.True(await client.WaitForLineAsync("stream-open stream-start", wait), $"client never held its stream: {client.Stdout}\n{client.Stderr}\n--- web ---\n{web.Stderr}");
        Assert.True(await tcpClient.WaitForLineAsync("stream-open stream-start", wait), $"tcpclient never held its stream: {tcpClient.Stdout}\n{tcpClient.Stderr}");

        // The transport each used, from the sidecars' reports to node 1's agent and from node 2's endpoints.
        const string quicOfClient = "beemesh_mesh_tunnel_client_connections_total{workload=\"client.default\",transport=\"quic\"}";
        const string tcpOfClient = "beemesh_mesh_tunnel_client_connections_total{workload=\"client.default\",transport=\"tcp\"}";
        const string quicOfTcpClient = "beemesh_mesh_tunnel_client_connections_total{workload=\"tcpclient.default\",transport=\"quic\"}";
        const string tcpOfTcpClient = "beemesh_mesh_tunnel_client_connections_total{workload=\"tcpclient.default\",transport=\"tcp\"}";
        Dictionary<string, double> node1 = await MetricsAfterReportsAsync(0, m => m.GetValueOrDefault(quicOfClient) >= 1 && m.GetValueOrDefault(tcpOfTcpClient) >= 1);
        foreach (var (name, value) in node1.Where(m => m.Key.StartsWith("beemesh_mesh_tunnel_client", StringComparison.Ordinal) || m.Key.StartsWith("beemesh_mesh_quic", StringComparison.Ordinal)))
        {
            output.WriteLine($"node 1: {name} {value}");
        }

        Assert.True(node1.GetValueOrDefault(quicOfClient) >= 1, "client's tunnel connection did not go over QUIC");
        Assert.Equal(0, node1.GetValueOrDefault(tcpOfClient));
        Assert.Equal(0, node1.GetValueOrDefault(quicOfTcpClient));
        Assert.True(node1.GetValueOrDefault(tcpOfTcpClient) >= 1, "tcpclient's tunnel connection did not go over TCP");
        Assert.Equal(0, node1.GetValueOrDefault("beemesh_mesh_quic_fallbacks_total{workload=\"client.default\"}"));
        using HttpClient admin2 = AgentAdmin.Client(Dir(1));
        (_, Dictionary<string, double> node2) = await AgentAdmin.MetricsAsync(admin2, since: null);
        output.WriteLine($"node 2: quic routed {node2.GetValueOrDefault("beemesh_agent_quic_tunnel_total{reason=\"routed\"}")}, tcp routed {node2.GetValueOrDefault("beemesh_agent_tunnel_connections_total{reason=\"routed\"}")}");
        Assert.True(node2.GetValueOrDefault("beemesh_agent_quic_tunnel_total{reason=\"routed\"}") >= 1, "node 2's QUIC endpoint routed nothing");
        Assert.True(node2.GetValueOrDefault("beemesh_agent_quic_tunnel_total{reason=\"connections_accepted\"}") >= 1);
        Assert.True(node2.GetValueOrDefault("beemesh_agent_tunnel_connections_total{reason=\"routed\"}") >= 1, "tcpclient's connection did not reach node 2's TCP tunnel port");

        // A DENY for client cuts its QUIC stream on both sides; tcpclient's stream goes on.
        string policy = Path.Combine(_root, "deny-client.yaml");
        await File.WriteAllTextAsync(policy, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-client, namespace: default}\nspec:\n  action: DENY\n  rules:\n  - from: [{source: {principals: [\"example.org/ns/default/sa/client\"]}}]\n");
        int serverEndsBefore = CountLines(web.Stderr, "server-stream-ended");
        var clock = Stopwatch.StartNew();
        (int code, string text) = await Cli("policy", "apply", "-f", policy, "--agent", Dir(0));
        Assert.True(code == 0, text);
        Assert.True(await client.WaitForLineAsync("stream-ended", wait), $"the QUIC stream survived the policy: {client.Stdout}\n{client.Stderr}");
        TimeSpan clientCut = clock.Elapsed;
        Assert.True(await web.WaitUntilAsync(r => CountLines(r.Stderr, "server-stream-ended") >= serverEndsBefore + 1, wait), web.Stderr);
        output.WriteLine($"DENY applied on node 1: the QUIC stream node 1 -> node 2 cut on the client after {clientCut.TotalMilliseconds:0} ms, on the server after {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(await client.WaitUntilAsync(r => CountLines(r.Stdout, "call: ") >= 3, wait), client.Stdout);
        Assert.DoesNotContain("call: hello", client.Stdout);
        Assert.DoesNotContain("stream-ended", tcpClient.Stdout);
    }

    /// <summary>Node <paramref name="node"/>'s agent metrics once <paramref name="done"/> holds (see <see cref="AgentAdmin.MetricsAfterReportsAsync"/>).</summary>
    private async Task<Dictionary<string, double>> MetricsAfterReportsAsync(int node, Func<Dictionary<string, double>, bool> done)
    {
        using HttpClient admin = AgentAdmin.Client(Dir(node));
        return await AgentAdmin.MetricsAfterReportsAsync(admin, done);
    }
}
