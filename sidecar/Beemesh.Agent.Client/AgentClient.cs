using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Beemesh.Agent.Client;

/// <summary>
/// Typed client of the agent's admin API: HTTP/1.1 JSON over <c>DIR/admin.sock</c>. Refusals
/// surface as <see cref="AgentApiException"/>; an agent that is not running as
/// <see cref="HttpRequestException"/> (with a <see cref="SocketException"/> inside). Thread-safe.
/// </summary>
public sealed class AgentClient : IDisposable
{
    private readonly HttpClient _http;

    /// <summary>Connects to the agent whose state directory is <paramref name="agentDirectory"/>.</summary>
    public AgentClient(string agentDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(agentDirectory);
        AdminSocketPath = Path.Combine(agentDirectory, "admin.sock");
        string socketPath = AdminSocketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // The host name is only a placeholder: the connect callback always dials the socket.
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://agent/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>The admin socket this client dials.</summary>
    public string AdminSocketPath { get; }

    /// <summary>
    /// The agent directory used when none is given: <c>/run/beemesh</c> for root, else
    /// <c>$XDG_RUNTIME_DIR/beemesh</c> (or <c>/tmp/beemesh-USER</c> when that is unset).
    /// </summary>
    public static string DefaultAgentDirectory()
    {
        if (Environment.IsPrivilegedProcess)
        {
            return "/run/beemesh";
        }

        string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return string.IsNullOrEmpty(runtime) ? Path.Combine(Path.GetTempPath(), "beemesh-" + Environment.UserName) : Path.Combine(runtime, "beemesh");
    }

    /// <summary>Registers a workload; returns its id, SPIFFE ID and mesh address.</summary>
    public Task<WorkloadRecord> RegisterWorkloadAsync(WorkloadRegistration registration, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/workloads", Json(registration, AgentJsonContext.Default.WorkloadRegistration), AgentJsonContext.Default.WorkloadRecord, cancellationToken);

    /// <summary>Removes a registration; false when the agent did not know it.</summary>
    public Task<bool> UnregisterWorkloadAsync(string id, CancellationToken cancellationToken = default) =>
        SendOrNotFoundAsync(HttpMethod.Delete, "v1/workloads/" + Uri.EscapeDataString(id), null, cancellationToken);

    /// <summary>Every registered workload.</summary>
    public Task<List<WorkloadRecord>> ListWorkloadsAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/workloads", null, AgentJsonContext.Default.ListWorkloadRecord, cancellationToken);

    /// <summary>
    /// Resolves <c>NAME.NAMESPACE[.svc.cluster.local]</c> to its service: every replica and the address
    /// the name resolves to; null when no workload has that name.
    /// </summary>
    public Task<ServiceRecord?> ResolveAsync(string name, CancellationToken cancellationToken = default) =>
        FindAsync("v1/resolve?name=" + Uri.EscapeDataString(name), AgentJsonContext.Default.ServiceRecord, cancellationToken);

    /// <summary>Finds the workload holding a mesh address; null when none does.</summary>
    public Task<WorkloadRecord?> ResolveAddressAsync(IPAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        return FindAsync("v1/resolve-address?address=" + Uri.EscapeDataString(address.ToString()), AgentJsonContext.Default.WorkloadRecord, cancellationToken);
    }

    /// <summary>Applies a (multi-document) AuthorizationPolicy file; a bad file is refused whole with its errors in <see cref="AgentApiException.Details"/>.</summary>
    public Task<PolicyApplyResult> ApplyPoliciesAsync(string yaml, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/policies", new StringContent(yaml, Encoding.UTF8, new MediaTypeHeaderValue("application/yaml")), AgentJsonContext.Default.PolicyApplyResult, cancellationToken);

    /// <summary>Every stored policy and the current version.</summary>
    public Task<PolicySet> ListPoliciesAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/policies", null, AgentJsonContext.Default.PolicySet, cancellationToken);

    /// <summary>Deletes a policy; false when there was none by that name.</summary>
    public Task<bool> DeletePolicyAsync(string ns, string name, CancellationToken cancellationToken = default) =>
        SendOrNotFoundAsync(HttpMethod.Delete, "v1/policies/" + Uri.EscapeDataString(ns) + "/" + Uri.EscapeDataString(name), null, cancellationToken);

    /// <summary>
    /// Waits until the policy version exceeds <paramref name="since"/> and returns the new set, or
    /// returns the unchanged set (version not above <paramref name="since"/>) after
    /// <paramref name="timeout"/> (the agent caps it, 30 s by default).
    /// </summary>
    public Task<PolicySet> WatchPoliciesAsync(long since, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        WatchPoliciesAsync(null, since, timeout, cancellationToken);

    /// <summary>
    /// Like <see cref="WatchPoliciesAsync(long, TimeSpan?, CancellationToken)"/>, and answered at once
    /// when <paramref name="epoch"/> (from an earlier answer) is not the agent's current one: the
    /// agent restarted since.
    /// </summary>
    public Task<PolicySet> WatchPoliciesAsync(string? epoch, long since, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WatchQuery("v1/policies/watch", epoch, since, timeout), null, AgentJsonContext.Default.PolicySet, cancellationToken);

    /// <summary>
    /// Waits until the workload list changes past <paramref name="since"/> (or the agent's epoch is not
    /// <paramref name="epoch"/>) and returns it, or returns it unchanged after <paramref name="timeout"/>
    /// (zero: at once).
    /// </summary>
    public Task<WorkloadSet> WatchWorkloadsAsync(string? epoch, long since, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WatchQuery("v1/workloads/watch", epoch, since, timeout), null, AgentJsonContext.Default.WorkloadSet, cancellationToken);

    private static string WatchQuery(string path, string? epoch, long since, TimeSpan? timeout)
    {
        string position = since.ToString(CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(epoch))
        {
            position = epoch + ":" + position;
        }

        string query = path + "?since=" + Uri.EscapeDataString(position);
        if (timeout is { } t)
        {
            query += "&timeout=" + ((long)Math.Ceiling(t.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        return query;
    }

    /// <summary>Replaces the live-connection report of a workload's sidecar.</summary>
    public async Task ReportConnectionsAsync(ConnectionReport report, CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage response = await _http.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, "v1/connections") { Content = Json(report, AgentJsonContext.Default.ConnectionReport) },
            cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The agent's status: workloads, identities, connections, policies.</summary>
    public Task<AgentStatus> GetStatusAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/status", null, AgentJsonContext.Default.AgentStatus, cancellationToken);

    /// <summary>The node's overlay views and every node it knows of (<c>GET /v1/members</c>).</summary>
    public Task<MembersReport> GetMembersAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/members", null, AgentJsonContext.Default.MembersReport, cancellationToken);

    /// <summary>
    /// Waits until the node's overlay changes past <paramref name="since"/> (a <see cref="MembersReport.ChangeVersion"/>)
    /// and returns the members report then, or returns it unchanged after <paramref name="timeout"/> (the
    /// agent caps it, 30 s by default).
    /// </summary>
    public Task<MembersReport> WatchMembersAsync(long since, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, WatchQuery("v1/members/watch", null, since, timeout), null, AgentJsonContext.Default.MembersReport, cancellationToken);

    /// <summary>
    /// Revokes node <paramref name="nodeName"/> across the mesh (only on the node holding the trust
    /// domain's root key). False when the agent runs without the overlay.
    /// </summary>
    public Task<bool> RemoveNodeAsync(string nodeName, CancellationToken cancellationToken = default) =>
        SendOrNotFoundAsync(HttpMethod.Delete, "v1/nodes/" + Uri.EscapeDataString(nodeName), null, cancellationToken);

    /// <summary>The agent's metrics in Prometheus text format.</summary>
    public async Task<string> GetMetricsAsync(CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage response = await _http.GetAsync("metrics", cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends a raw request (for tools and tests that speak the API directly).</summary>
    public Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken cancellationToken = default) =>
        _http.SendAsync(request, cancellationToken);

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        using HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return JsonSerializer.Deserialize(body, type) ?? throw new AgentApiException(response.StatusCode, "the agent answered an empty body");
    }

    private async Task<bool> SendOrNotFoundAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        using HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async Task<T?> FindAsync<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        using HttpResponseMessage response = await _http.GetAsync(path, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return JsonSerializer.Deserialize(body, type);
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        ErrorResponse? error = null;
        try
        {
            error = JsonSerializer.Deserialize(body, AgentJsonContext.Default.ErrorResponse);
        }
        catch (JsonException)
        {
        }

        string message = string.IsNullOrEmpty(error?.Error) ? $"the agent answered {(int)response.StatusCode} {response.ReasonPhrase}" : error.Error;
        throw new AgentApiException(response.StatusCode, message, error?.Details);
    }

    private static StringContent Json<T>(T value, JsonTypeInfo<T> type) =>
        new(JsonSerializer.Serialize(value, type), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
}
