using System.Globalization;
using System.Text;

namespace Beemesh.Agent.Hosting;

/// <summary>The agent's counters, rendered in the Prometheus text exposition format (version 0.0.4).</summary>
internal sealed class AgentMetrics
{
    private long _adminRequests;
    private long _badRequests;

    /// <summary>The sidecars' mesh counters, summed across workloads.</summary>
    public MeshTotals Mesh { get; } = new();

    public long AdminRequests => Interlocked.Read(ref _adminRequests);

    public long BadRequests => Interlocked.Read(ref _badRequests);

    public void CountRequest() => Interlocked.Increment(ref _adminRequests);

    public void CountBadRequest() => Interlocked.Increment(ref _badRequests);

    public string Render(int workloads, int policies, long policyVersion, int connections)
    {
        var text = new StringBuilder();
        Append(text, "beemesh_agent_workloads", "gauge", "Registered workloads.", workloads);
        Append(text, "beemesh_agent_policies", "gauge", "Stored authorization policies.", policies);
        Append(text, "beemesh_agent_policy_version", "gauge", "Version of the policy set; bumped by every change.", policyVersion);
        Append(text, "beemesh_agent_live_connections", "gauge", "Live connections the sidecars last reported.", connections);
        Append(text, "beemesh_agent_admin_requests_total", "counter", "Admin API requests served.", AdminRequests);
        Append(text, "beemesh_agent_admin_bad_requests_total", "counter", "Admin API requests refused as malformed or invalid.", BadRequests);
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
