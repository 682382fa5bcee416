using System.Globalization;
using System.Text;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;

namespace Beemesh.Agent.Tests.Hosting;

public sealed class MeshMetricsTests
{
    [Fact]
    public void Render_SumsRegistrationsOfOneWorkload_AndHasHelpAndTypeForEveryFamily()
    {
        var totals = new MeshTotals();
        totals.Update("w1", "api.default", Report(opened: 2, bytesIn: 100, handshakeSeconds: 0.003));
        totals.Update("w2", "api.default", Report(opened: 3, bytesIn: 50, handshakeSeconds: 0.2));
        totals.Update("w3", "web.default", Report(opened: 1, bytesIn: 1, handshakeSeconds: 0.003));

        Dictionary<string, double> samples = Parse(Render(totals), out HashSet<string> help, out Dictionary<string, string> types);

        Assert.Equal(5, samples["beemesh_mesh_connections_opened_total{workload=\"api.default\"}"]);
        Assert.Equal(1, samples["beemesh_mesh_connections_opened_total{workload=\"web.default\"}"]);
        Assert.Equal(150, samples["beemesh_mesh_bytes_total{workload=\"api.default\",direction=\"to_workload\"}"]);
        Assert.Equal(2, samples["beemesh_mesh_tls_handshakes_total{workload=\"api.default\",side=\"server\",result=\"ok\"}"]);
        Assert.Equal(1, samples["beemesh_mesh_tls_handshake_duration_seconds_bucket{workload=\"api.default\",side=\"server\",le=\"0.005\"}"]);
        Assert.Equal(2, samples["beemesh_mesh_tls_handshake_duration_seconds_bucket{workload=\"api.default\",side=\"server\",le=\"0.25\"}"]);
        Assert.Equal(2, samples["beemesh_mesh_tls_handshake_duration_seconds_bucket{workload=\"api.default\",side=\"server\",le=\"+Inf\"}"]);
        Assert.Equal(2, samples["beemesh_mesh_tls_handshake_duration_seconds_count{workload=\"api.default\",side=\"server\"}"]);
        Assert.Equal(0.203, samples["beemesh_mesh_tls_handshake_duration_seconds_sum{workload=\"api.default\",side=\"server\"}"], 9);
        Assert.Equal(4, samples["beemesh_mesh_authorization_decisions_total{workload=\"api.default\",decision=\"allow\",trigger=\"connect\"}"]);
        Assert.Equal(2, samples["beemesh_mesh_revocations_total{workload=\"api.default\",trigger=\"policy-changed\"}"]);
        Assert.Equal(2, samples["beemesh_mesh_connections_active{workload=\"api.default\"}"]);
        Assert.Equal("histogram", types["beemesh_mesh_tls_handshake_duration_seconds"]);
        Assert.Equal("gauge", types["beemesh_mesh_connections_active"]);
        foreach (string name in new[] { "beemesh_mesh_connections_opened_total", "beemesh_mesh_bytes_total", "beemesh_mesh_tls_handshakes_total",
            "beemesh_mesh_authorization_decisions_total", "beemesh_mesh_revocations_total", "beemesh_mesh_connections_kept_at_svid_expiry_total", "beemesh_mesh_svid_rotations_total" })
        {
            Assert.Contains(name, help);
            Assert.Equal("counter", types[name]);
        }
    }

    [Fact]
    public void Render_CountsOutboundTunnelConnectionsByTransportAndIgnoresUnknownTransports()
    {
        var totals = new MeshTotals();
        MeshCounterReport first = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        first.TunnelConnections = new() { ["tcp"] = 2, ["quic"] = 5, ["carrier-pigeon"] = 7 };
        first.QuicFallbacks = 1;
        MeshCounterReport second = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        second.TunnelConnections = new() { ["quic"] = 1 };
        totals.Update("w1", "web.default", first);
        totals.Update("w2", "web.default", second);
        // A report from before the field existed counts zero.
        MeshCounterReport old = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        old.TunnelConnections = null!;
        totals.Update("w3", "api.default", old);

        Dictionary<string, double> samples = Parse(Render(totals), out HashSet<string> help, out Dictionary<string, string> types);

        Assert.Equal(2, samples["beemesh_mesh_tunnel_client_connections_total{workload=\"web.default\",transport=\"tcp\"}"]);
        Assert.Equal(6, samples["beemesh_mesh_tunnel_client_connections_total{workload=\"web.default\",transport=\"quic\"}"]);
        Assert.Equal(1, samples["beemesh_mesh_quic_fallbacks_total{workload=\"web.default\"}"]);
        Assert.Equal(0, samples["beemesh_mesh_tunnel_client_connections_total{workload=\"api.default\",transport=\"quic\"}"]);
        Assert.DoesNotContain(samples.Keys, k => k.Contains("carrier-pigeon", StringComparison.Ordinal));
        Assert.Equal("counter", types["beemesh_mesh_tunnel_client_connections_total"]);
        Assert.Contains("beemesh_mesh_quic_fallbacks_total", help);
    }

    [Fact]
    public void Render_CountsTunnelConnectionsAndFlowsLostByReason()
    {
        var totals = new MeshTotals();
        MeshCounterReport first = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        first.TunnelConnectionsLost = new() { ["keepalive_timeout"] = 2, ["ping_flood"] = 1, ["made-up"] = 9 };
        first.TunnelFlowsLost = new() { ["keepalive_timeout"] = 5 };
        MeshCounterReport second = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        second.TunnelConnectionsLost = new() { ["keepalive_timeout"] = 1 };
        second.TunnelFlowsLost = new() { ["keepalive_timeout"] = 3 };
        totals.Update("w1", "api.default", first);
        totals.Update("w2", "api.default", second);
        // A report from before the fields existed counts zero.
        MeshCounterReport old = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        old.TunnelConnectionsLost = null!;
        old.TunnelFlowsLost = null!;
        totals.Update("w3", "web.default", old);

        Dictionary<string, double> samples = Parse(Render(totals), out HashSet<string> help, out Dictionary<string, string> types);

        Assert.Equal(3, samples["beemesh_mesh_tunnel_connections_lost_total{workload=\"api.default\",reason=\"keepalive_timeout\"}"]);
        Assert.Equal(1, samples["beemesh_mesh_tunnel_connections_lost_total{workload=\"api.default\",reason=\"ping_flood\"}"]);
        Assert.Equal(8, samples["beemesh_mesh_tunnel_flows_lost_total{workload=\"api.default\",reason=\"keepalive_timeout\"}"]);
        Assert.Equal(0, samples["beemesh_mesh_tunnel_flows_lost_total{workload=\"api.default\",reason=\"ping_flood\"}"]);
        Assert.Equal(0, samples["beemesh_mesh_tunnel_connections_lost_total{workload=\"web.default\",reason=\"keepalive_timeout\"}"]);
        Assert.DoesNotContain(samples.Keys, k => k.Contains("made-up", StringComparison.Ordinal));
        foreach (string name in new[] { "beemesh_mesh_tunnel_connections_lost_total", "beemesh_mesh_tunnel_flows_lost_total" })
        {
            Assert.Contains(name, help);
            Assert.Equal("counter", types[name]);
        }
    }

    [Fact]
    public void Render_SumsEventualStoreReplicationCountersPerWorkload()
    {
        var totals = new MeshTotals();
        MeshCounterReport first = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        first.EventualState = new() { ["pushed"] = 3, ["received"] = 5, ["merged"] = 4, ["digest_rounds"] = 10, ["refused_frames"] = 1, ["failed_exchanges"] = 2, ["journal_dropped_records"] = 1, ["journal_dropped_bytes"] = 37, ["journal_syncs"] = 9, ["journal_compactions"] = 2, ["journal_failures"] = 0 };
        MeshCounterReport second = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        second.EventualState = new() { ["pushed"] = 1, ["digest_rounds"] = 7, ["journal_syncs"] = 3 };
        totals.Update("w1", "kv.default", first);
        totals.Update("w2", "kv.default", second);
        // A report from before the field existed counts zero.
        MeshCounterReport old = Report(opened: 0, bytesIn: 0, handshakeSeconds: 0.003);
        old.EventualState = null!;
        totals.Update("w3", "api.default", old);

        Dictionary<string, double> samples = Parse(Render(totals), out HashSet<string> help, out Dictionary<string, string> types);

        Assert.Equal(4, samples["beemesh_state_eventual_entries_total{workload=\"kv.default\",event=\"pushed\"}"]);
        Assert.Equal(5, samples["beemesh_state_eventual_entries_total{workload=\"kv.default\",event=\"received\"}"]);
        Assert.Equal(4, samples["beemesh_state_eventual_entries_total{workload=\"kv.default\",event=\"merged\"}"]);
        Assert.Equal(17, samples["beemesh_state_eventual_digest_rounds_total{workload=\"kv.default\"}"]);
        Assert.Equal(1, samples["beemesh_state_eventual_refused_frames_total{workload=\"kv.default\"}"]);
        Assert.Equal(2, samples["beemesh_state_eventual_failed_exchanges_total{workload=\"kv.default\"}"]);
        Assert.Equal(0, samples["beemesh_state_eventual_digest_rounds_total{workload=\"api.default\"}"]);
        Assert.Equal(1, samples["beemesh_state_eventual_journal_dropped_records_total{workload=\"kv.default\"}"]);
        Assert.Equal(37, samples["beemesh_state_eventual_journal_dropped_bytes_total{workload=\"kv.default\"}"]);
        Assert.Equal(12, samples["beemesh_state_eventual_journal_syncs_total{workload=\"kv.default\"}"]);
        Assert.Equal(2, samples["beemesh_state_eventual_journal_compactions_total{workload=\"kv.default\"}"]);
        Assert.Equal(0, samples["beemesh_state_eventual_journal_failures_total{workload=\"api.default\"}"]);
        foreach (string name in new[]
        {
            "beemesh_state_eventual_entries_total", "beemesh_state_eventual_digest_rounds_total", "beemesh_state_eventual_refused_frames_total", "beemesh_state_eventual_failed_exchanges_total",
            "beemesh_state_eventual_journal_dropped_records_total", "beemesh_state_eventual_journal_dropped_bytes_total", "beemesh_state_eventual_journal_syncs_total",
            "beemesh_state_eventual_journal_compactions_total", "beemesh_state_eventual_journal_failures_total",
        })
        {
            Assert.Contains(name, help);
            Assert.Equal("counter", types[name]);
        }
    }

    [Fact]
    public void Departure_KeepsTheTotalsSoNoCounterSumGoesBackwards()
    {
        var totals = new MeshTotals();
        totals.Update("w1", "api.default", Report(opened: 2, bytesIn: 100, handshakeSeconds: 0.003));
        totals.Update("w2", "web.default", Report(opened: 1, bytesIn: 10, handshakeSeconds: 0.003));
        double before = Sum(Parse(Render(totals), out _, out _), "beemesh_mesh_bytes_total{");

        totals.Depart("w1");
        totals.Update("w1", "api.default", Report(opened: 9, bytesIn: 999, handshakeSeconds: 0.003)); // late report: ignored
        Dictionary<string, double> after = Parse(Render(totals), out _, out _);

        Assert.Equal(before, Sum(after, "beemesh_mesh_bytes_total{"));
        Assert.Equal(2, after["beemesh_mesh_connections_opened_total{workload=\"(departed)\"}"]);
        Assert.False(after.ContainsKey("beemesh_mesh_connections_opened_total{workload=\"api.default\"}"));
        Assert.False(after.ContainsKey("beemesh_mesh_connections_active{workload=\"(departed)\"}"));
    }

    [Fact]
    public async Task SidecarReport_ReachesMetricsThroughTheAdminApi()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord api = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api"));

        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = api.Id, Connections = [], Mesh = Report(opened: 4, bytesIn: 42, handshakeSeconds: 0.01) });
        string text = await agent.Client.GetMetricsAsync();
        Dictionary<string, double> samples = Parse(text, out _, out _);

        Assert.Equal(4, samples["beemesh_mesh_connections_opened_total{workload=\"api.default\"}"]);
        Assert.Equal(42, samples["beemesh_mesh_bytes_total{workload=\"api.default\",direction=\"to_workload\"}"]);
        Assert.True(samples.ContainsKey("beemesh_agent_workloads"));

        Assert.True(await agent.Client.UnregisterWorkloadAsync(api.Id));
        samples = Parse(await agent.Client.GetMetricsAsync(), out _, out _);
        Assert.Equal(42, samples["beemesh_mesh_bytes_total{workload=\"(departed)\",direction=\"to_workload\"}"]);
    }

    [Fact]
    public async Task MetricsSinceAPosition_AnswerOnceASidecarReportArrivedAfterIt()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord api = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api"));
        (string before, string text) = await MetricsAsync(agent.Client, since: null);
        Assert.DoesNotContain("beemesh_mesh_bytes_total{workload=\"api.default\"", text, StringComparison.Ordinal);

        // The long poll is open before the report, so only the report can answer it (its timeout is the agent's cap).
        Task<(string Position, string Text)> watch = MetricsAsync(agent.Client, before);
        await agent.Client.ReportConnectionsAsync(new ConnectionReport { WorkloadId = api.Id, Connections = [], Mesh = Report(opened: 4, bytesIn: 42, handshakeSeconds: 0.01) });
        (string after, string reported) = await watch;

        Assert.NotEqual(before, after);
        Assert.Equal(42, Parse(reported, out _, out _)["beemesh_mesh_bytes_total{workload=\"api.default\",direction=\"to_workload\"}"]);
        // A position already passed answers at once, with the same numbers.
        (string again, string same) = await MetricsAsync(agent.Client, before);
        Assert.Equal(after, again);
        Assert.Equal(42, Parse(same, out _, out _)["beemesh_mesh_bytes_total{workload=\"api.default\",direction=\"to_workload\"}"]);

        using HttpResponseMessage bad = await agent.Client.SendRawAsync(new HttpRequestMessage(HttpMethod.Get, "metrics?since=not-a-position"));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
    }

    private static async Task<(string Position, string Text)> MetricsAsync(AgentClient client, string? since)
    {
        using HttpResponseMessage response = await client.SendRawAsync(new HttpRequestMessage(HttpMethod.Get, since is null ? "metrics" : "metrics?since=" + Uri.EscapeDataString(since)));
        response.EnsureSuccessStatusCode();
        return (response.Headers.GetValues("Beemesh-Reports").Single(), await response.Content.ReadAsStringAsync());
    }

    private static MeshCounterReport Report(long opened, long bytesIn, double handshakeSeconds)
    {
        var buckets = new List<long>(new long[MeshTotals.HandshakeBounds.Count + 1]);
        int bucket = 0;
        while (bucket < MeshTotals.HandshakeBounds.Count && handshakeSeconds > MeshTotals.HandshakeBounds[bucket])
        {
            bucket++;
        }

        buckets[bucket] = 1;
        return new MeshCounterReport
        {
            ConnectionsOpened = opened,
            ConnectionsActive = 1,
            BytesToWorkload = bytesIn,
            BytesFromWorkload = 1,
            ServerHandshakes = new HandshakeReport { Count = 1, SumSeconds = handshakeSeconds, Bounds = [.. MeshTotals.HandshakeBounds], Buckets = buckets },
            Allowed = new() { ["connect"] = 2 },
            Revocations = new() { ["policy-changed"] = 1 },
        };
    }

    private static string Render(MeshTotals totals)
    {
        var text = new StringBuilder();
        totals.Render(text);
        return text.ToString();
    }

    private static double Sum(Dictionary<string, double> samples, string prefix) =>
        samples.Where(s => s.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(s => s.Value);

    /// <summary>Parses the text format: every sample line as "name{labels}" → value; HELP and TYPE lines checked for shape.</summary>
    internal static Dictionary<string, double> Parse(string text, out HashSet<string> help, out Dictionary<string, string> types)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        help = new HashSet<string>(StringComparer.Ordinal);
        types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] parts = line.Split(' ', 4);
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                Assert.True(parts.Length == 4 && parts[3].Length > 0, line);
                help.Add(parts[2]);
            }
            else if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                Assert.Contains(parts[3], new[] { "counter", "gauge", "histogram" });
                types[parts[2]] = parts[3];
            }
            else
            {
                int space = line.LastIndexOf(' ');
                Assert.True(space > 0, line);
                Assert.True(samples.TryAdd(line[..space], double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture)), "duplicate sample " + line);
            }
        }

        return samples;
    }
}
