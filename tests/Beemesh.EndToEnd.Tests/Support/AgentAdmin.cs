using System.Diagnostics;
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
