using System.Net;
using Beemesh.Sidecar.Tests.Tunnel;

namespace Beemesh.Sidecar.Tests.Http;

/// <summary>
/// An HttpClient whose connections are tunnel flows from one test sidecar to another's port:
/// HTTP/1.1, or HTTP/2 with prior knowledge (an exact 2.0 request over http://). Counts the flows
/// it opened, so a test can tell whether requests shared a connection.
/// </summary>
internal sealed class TunnelHttpClient : IDisposable
{
    private readonly HttpClient _client;
    private readonly Version _version;
    private int _flows;

    public TunnelHttpClient(TestSidecar from, TestSidecar to, int port, Version version)
    {
        _version = version;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = 1,
            ConnectCallback = async (_, cancellationToken) =>
            {
                Interlocked.Increment(ref _flows);
                return new FlushingStream(await from.Pool.OpenAsync(to.Peer, port, cancellationToken));
            },
        };
        _client = new HttpClient(handler) { BaseAddress = new Uri($"http://api.default:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public int FlowsOpened => Volatile.Read(ref _flows);

    public Task<(HttpStatusCode Status, string Body)> GetAsync(string target) => SendAsync(HttpMethod.Get, target, null);

    public async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string target, string? content, params (string Name, string Value)[] headers)
    {
        using HttpRequestMessage request = Request(method, target);
        if (content is not null)
        {
            request.Content = new StringContent(content);
        }

        foreach ((string name, string value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using HttpResponseMessage response = await _client.SendAsync(request);
        Assert.Equal(_version, response.Version);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Sends a GET and returns as soon as the response headers arrived.</summary>
    public Task<HttpResponseMessage> StartAsync(string target, CancellationToken cancellationToken) =>
        _client.SendAsync(Request(HttpMethod.Get, target), HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public void Dispose() => _client.Dispose();

    private HttpRequestMessage Request(HttpMethod method, string target) =>
        new(method, target) { Version = _version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
}
