using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>
/// The admin API of an agent a test started, over its socket, and waits on the agent's change feeds
/// (the workload list's watch, the sidecar reports' position on <c>/metrics</c>) instead of a timer.
/// </summary>
public static class AgentAdmin
{
    /// <summary>An HTTP client for the admin socket in <paramref name="directory"/>.</summary>
    public static HttpClient Client(string directory)
    {
        string socketPath = Path.Combine(directory, "admin.sock");
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://agent/") };
    }

    /// <summary>
    /// The workload list's position (<c>EPOCH:VERSION</c>) after its next change past <paramref name="position"/>
    /// (a long poll of at most 5 s); with null, the current one at once.
    /// </summary>
    public static async Task<string> WorkloadsChangedAsync(HttpClient admin, string? position)
    {
        using JsonDocument set = JsonDocument.Parse(await admin.GetStringAsync(
            position is null ? "v1/workloads/watch?timeout=0" : $"v1/workloads/watch?since={Uri.EscapeDataString(position)}&timeout=5"));
        return $"{set.RootElement.GetProperty("epoch").GetString()}:{set.RootElement.GetProperty("version").GetInt64()}";
    }

    /// <summary>
    /// The sidecar reports' position after the next report past <paramref name="position"/> (a long poll of
    /// at most 5 s on <c>/metrics</c>); with null, the current one at once.
    /// </summary>
    public static async Task<string> ReportsChangedAsync(HttpClient admin, string? position)
    {
        using HttpResponseMessage response = await admin.GetAsync(
            position is null ? "metrics" : $"metrics?since={Uri.EscapeDataString(position)}&timeout=5", HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        return response.Headers.GetValues("Beemesh-Reports").Single();
    }

    /// <summary>
    /// The agent's metrics (<c>name{labels}</c> → value) and the position of the sidecar reports they
    /// include; with <paramref name="since"/>, read after the next report past it (a long poll of at most 5 s).
    /// </summary>
    public static async Task<(string Position, Dictionary<string, double> Metrics)> MetricsAsync(HttpClient admin, string? since)
    {
        using HttpResponseMessage response = await admin.GetAsync(
            since is null ? "metrics" : $"metrics?since={Uri.EscapeDataString(since)}&timeout=5");
        response.EnsureSuccessStatusCode();
        string position = response.Headers.GetValues("Beemesh-Reports").Single();
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string line in (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            if (!line.StartsWith('#') && space > 0)
            {
                samples[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return (position, samples);
    }

    /// <summary>
    /// The agent's metrics once <paramref name="done"/> holds, read again after each sidecar report (the
    /// <c>/metrics?since=</c> long poll), never on a timer; the last read after <paramref name="reports"/>
    /// reports went by without it (sidecars report every 2 s, so that many reports bound the wait).
    /// </summary>
    public static async Task<Dictionary<string, double>> MetricsAfterReportsAsync(HttpClient admin, Func<Dictionary<string, double>, bool> done, int reports = 30)
    {
        (string position, Dictionary<string, double> metrics) = await MetricsAsync(admin, since: null);
        for (int seen = 0; !done(metrics) && seen < reports; seen++)
        {
            (position, metrics) = await MetricsAsync(admin, position);
        }

        return metrics;
    }

    /// <summary>
    /// True when every registered workload named <paramref name="name"/> in <paramref name="ns"/> has a
    /// sidecar that reported enforcing the agent's current policy set (<c>GET /v1/status</c>).
    /// </summary>
    public static async Task<bool> PolicyInForceAsync(HttpClient admin, string name, string ns = "default")
    {
        using JsonDocument status = JsonDocument.Parse(await admin.GetStringAsync("v1/status"));
        long current = status.RootElement.GetProperty("policyVersion").GetInt64();
        bool any = false;
        foreach (JsonElement w in status.RootElement.GetProperty("workloads").EnumerateArray())
        {
            JsonElement record = w.GetProperty("workload");
            if (record.GetProperty("name").GetString() != name || record.GetProperty("namespace").GetString() != ns)
            {
                continue;
            }

            any = true;
            if (!w.TryGetProperty("policyVersion", out JsonElement enforced) || enforced.GetInt64() < current)
            {
                return false;
            }
        }

        return any;
    }

    /// <summary>The version part of a workload list position (<c>EPOCH:VERSION</c>).</summary>
    public static long VersionOf(string position) => long.Parse(position[(position.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);

    /// <summary>
    /// True when every registered workload named <paramref name="name"/> in <paramref name="ns"/> has a
    /// sidecar that reported routing by this agent's workload list at <paramref name="version"/> or a later
    /// one (<c>GET /v1/status</c>): its replica lists are those of that list.
    /// </summary>
    public static async Task<bool> WorkloadListInForceAsync(HttpClient admin, long version, string name, string ns = "default")
    {
        using JsonDocument status = JsonDocument.Parse(await admin.GetStringAsync("v1/status"));
        bool any = false;
        foreach (JsonElement w in status.RootElement.GetProperty("workloads").EnumerateArray())
        {
            JsonElement record = w.GetProperty("workload");
            if (record.GetProperty("name").GetString() != name || record.GetProperty("namespace").GetString() != ns)
            {
                continue;
            }

            any = true;
            if (!w.TryGetProperty("workloadListVersion", out JsonElement routed) || routed.ValueKind != JsonValueKind.Number || routed.GetInt64() < version)
            {
                return false;
            }
        }

        return any;
    }

    /// <summary>
    /// Returns true once <paramref name="done"/> holds, checked again at each change <paramref name="changed"/>
    /// waits for (its position read before each check, so no change in between is missed); false when
    /// <paramref name="cap"/> (a cap for a broken build, or the behaviour's own bound) passed first.
    /// </summary>
    public static async Task<bool> UntilAsync(Func<string?, Task<string>> changed, Func<Task<bool>> done, TimeSpan cap)
    {
        var clock = Stopwatch.StartNew();
        string position = await changed(null);
        while (!await done())
        {
            if (clock.Elapsed > cap)
            {
                return false;
            }

            position = await changed(position);
        }

        return true;
    }
}
