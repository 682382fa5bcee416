using System.Net.Sockets;
using System.Text;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>The agent's admin API (HTTP/JSON on <c>DIR/admin.sock</c>), the few calls the bench needs.</summary>
internal sealed class AdminSocketClient : IDisposable
{
    private readonly HttpClient _http;

    public AdminSocketClient(string agentDirectory)
    {
        string path = Path.Combine(agentDirectory, "admin.sock");
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://agent/"), Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>True when <paramref name="name"/> resolves to a registered workload.</summary>
    public async Task<bool> ResolvesAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            using HttpResponseMessage response = await _http.GetAsync("v1/resolve?name=" + Uri.EscapeDataString(name), cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>POST /v1/policies with a YAML body; throws when the agent refuses it.</summary>
    public async Task ApplyPolicyAsync(string yaml, CancellationToken cancellationToken)
    {
        using var content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using HttpResponseMessage response = await _http.PostAsync("v1/policies", content, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"policy refused: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
    }

    /// <summary>DELETE /v1/policies/NS/NAME.</summary>
    public async Task DeletePolicyAsync(string ns, string name, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await _http.DeleteAsync($"v1/policies/{Uri.EscapeDataString(ns)}/{Uri.EscapeDataString(name)}", cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode && response.StatusCode != System.Net.HttpStatusCode.NotFound)
        {
            throw new InvalidOperationException($"policy delete failed: {(int)response.StatusCode}");
        }
    }

    /// <summary>The agent's Prometheus metrics text ("" when unavailable).</summary>
    public async Task<string> MetricsAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _http.GetStringAsync("metrics", cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            return "";
        }
    }

    public void Dispose() => _http.Dispose();
}
