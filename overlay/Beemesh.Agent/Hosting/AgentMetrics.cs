using System.Globalization;
using System.Text;

namespace Beemesh.Agent.Hosting;

/// <summary>The agent's counters, rendered in the Prometheus text exposition format (version 0.0.4).</summary>
internal sealed class AgentMetrics
{
    private long _adminRequests;
    private long _badRequests;
    private long _forbidden;
    private long _tooLarge;
    private long _policyLimit;

    /// <summary>The sidecars' mesh counters, summed across workloads.</summary>
    public MeshTotals Mesh { get; } = new();

    public long AdminRequests => Interlocked.Read(ref _adminRequests);

    public long BadRequests => Interlocked.Read(ref _badRequests);

    public void CountRequest() => Interlocked.Increment(ref _adminRequests);

    public void CountBadRequest() => Interlocked.Increment(ref _badRequests);

    /// <summary>Admin requests refused with 403 (a workload calling, or registering a process it does not own).</summary>
    public void CountForbidden() => Interlocked.Increment(ref _forbidden);

    /// <summary>Admin requests refused with 413 for their body size.</summary>
    public void CountTooLarge() => Interlocked.Increment(ref _tooLarge);

    /// <summary>Policy applies refused for the policy count or total size limit.</summary>
    public void CountPolicyLimit() => Interlocked.Increment(ref _policyLimit);

    /// <summary>The admin API's connection limiter, once it runs.</summary>
    public Beemesh.Identity.WorkloadApi.ConnectionLimiter? AdminConnections { get; set; }

    /// <summary>The Workload API server, once it runs.</summary>
    public Beemesh.Identity.WorkloadApi.WorkloadApiServer? WorkloadApi { get; set; }

    /// <summary>The node's tunnel port, once it runs (nodes with a listen address).</summary>
    public Tunnel.SniTunnelRouter? TunnelRouter { get; set; }

    /// <summary>The node's QUIC tunnel endpoint, once it runs (nodes with a listen address, QUIC on and libmsquic present).</summary>
    public Tunnel.QuicTunnelRouter? QuicRouter { get; set; }

    public string Render(int workloads, int policies, long policyVersion, int connections)
    {
        var text = new StringBuilder();
        Append(text, "beemesh_agent_workloads", "gauge", "Registered workloads.", workloads);
        Append(text, "beemesh_agent_policies", "gauge", "Stored authorization policies.", policies);
        Append(text, "beemesh_agent_policy_version", "gauge", "Version of the policy set; bumped by every change.", policyVersion);
        Append(text, "beemesh_agent_live_connections", "gauge", "Live connections the sidecars last reported.", connections);
        Append(text, "beemesh_agent_admin_requests_total", "counter", "Admin API requests served.", AdminRequests);
        Append(text, "beemesh_agent_admin_bad_requests_total", "counter", "Admin API requests refused as malformed or invalid.", BadRequests);
        Append(text, "beemesh_agent_admin_forbidden_total", "counter", "Admin API requests refused with 403 (workload callers, registrations of processes the caller does not own).", Interlocked.Read(ref _forbidden));
        Append(text, "beemesh_agent_admin_too_large_total", "counter", "Admin API requests refused with 413 for their body size.", Interlocked.Read(ref _tooLarge));
        Append(text, "beemesh_agent_policy_limit_refusals_total", "counter", "Policy applies refused for the policy count or total size limit.", Interlocked.Read(ref _policyLimit));
        if (AdminConnections is { } admin)
        {
            Append(text, "beemesh_agent_admin_connections", "gauge", "Open admin API connections.", admin.Open);
            Append(text, "beemesh_agent_admin_connections_refused_total", "counter", "Admin API connections refused at accept (total or per-process limit, or unidentified caller).",
                admin.RefusedTotal + admin.RefusedPerProcess + admin.RefusedUnidentified);
        }

        if (WorkloadApi is { } api)
        {
            Append(text, "beemesh_agent_workload_api_connections", "gauge", "Open Workload API connections.", api.OpenConnections);
            Append(text, "beemesh_agent_workload_api_refused_total_limit_total", "counter", "Workload API connections closed at accept: total limit reached.", api.RefusedTotalLimit);
            Append(text, "beemesh_agent_workload_api_refused_process_limit_total", "counter", "Workload API connections closed at accept: the caller's per-process limit reached.", api.RefusedPerProcessLimit);
            Append(text, "beemesh_agent_workload_api_refused_identity_limit_total", "counter", "Workload API connections closed at accept: the caller's identity (or the pool of callers without one) full.", api.RefusedIdentityLimit);
            Append(text, "beemesh_agent_workload_api_refused_unidentified_total", "counter", "Workload API connections closed at accept: caller process gone or unreadable.", api.RefusedUnidentified);
        }

        if (TunnelRouter is { } tunnel)
        {
            const string family = "beemesh_agent_tunnel_connections_total";
            text.Append("# HELP ").Append(family).Append(" Tunnel port connections by outcome: routed to a local sidecar (and of those, handed_off to it as a descriptor or relayed through the agent), refused before any splice (refused_*), or, already counted as routed, relayed ones cut live when their node was removed (cut_revoked_peer) or after staying half-closed past the keep-alive bound (cut_half_closed).\n");
            text.Append("# TYPE ").Append(family).Append(" counter\n");
            IReadOnlyDictionary<string, long> counters = tunnel.Counters;
            foreach (string reason in Tunnel.SniTunnelRouter.CounterNames)
            {
                text.Append(family).Append("{reason=\"").Append(reason).Append("\"} ")
                    .Append(counters.GetValueOrDefault(reason).ToString(CultureInfo.InvariantCulture)).Append('\n');
            }

            Append(text, "beemesh_agent_tunnel_connections_active", "gauge", "Tunnel port connections being spliced now.", tunnel.LiveConnections);
        }

        if (QuicRouter is { } quic)
        {
            const string family = "beemesh_agent_quic_tunnel_total";
            text.Append("# HELP ").Append(family).Append(" QUIC tunnel endpoint events: connections accepted or refused at the handshake, live connections cut when their node was removed (cut_revoked_peer), streams routed to a local sidecar or refused (refused_*), relayed streams reset after staying half-closed past the keep-alive bound (cut_half_closed).\n");
            text.Append("# TYPE ").Append(family).Append(" counter\n");
            IReadOnlyDictionary<string, long> counters = quic.Counters;
            foreach (string reason in Tunnel.QuicTunnelRouter.CounterNames)
            {
                text.Append(family).Append("{reason=\"").Append(reason).Append("\"} ")
                    .Append(counters.GetValueOrDefault(reason).ToString(CultureInfo.InvariantCulture)).Append('\n');
            }

            Append(text, "beemesh_agent_quic_tunnel_connections_active", "gauge", "QUIC tunnel connections open now.", quic.LiveConnections);
            Append(text, "beemesh_agent_quic_tunnel_streams_active", "gauge", "QUIC tunnel streams being relayed now.", quic.LiveStreams);
        }

        Mesh.Render(text);
        return text.ToString();
    }

    private static void Append(StringBuilder text, string name, string type, string help, long value)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        text.Append(name).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }
}
