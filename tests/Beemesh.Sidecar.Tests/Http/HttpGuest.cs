using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.Inbound;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Beemesh.Sidecar.Tests.Http;

/// <summary>
/// An HTTP/1.1-only workload stand-in on loopback. Every path answers 200 with what it received
/// (<c>method target</c>, <c>version=</c>, <c>host=</c>, <c>xfcc=</c>, one per line); <c>/slow</c> sends
/// one line, then holds the response open until the request is aborted, which it records.
/// </summary>
internal sealed class HttpGuest : IGuestConnector, IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly IPEndPoint _endPoint;

    private HttpGuest(WebApplication app, IPEndPoint endPoint)
    {
        _app = app;
        _endPoint = endPoint;
    }

    /// <summary>Callers' mesh addresses and ports, one per upstream connection opened.</summary>
    public ConcurrentQueue<(IPAddress Caller, int Port)> Calls { get; } = new();

    /// <summary>Completes when a <c>/slow</c> request was aborted by the proxy.</summary>
    public TaskCompletionSource SlowAborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a <c>/slow</c> request started.</summary>
    public TaskCompletionSource SlowStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<HttpGuest> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1));
        WebApplication app = builder.Build();
        HttpGuest? guest = null;
        app.Run(context => guest!.HandleAsync(context));
        await app.StartAsync();
        string address = app.Urls.First();
        guest = new HttpGuest(app, new IPEndPoint(IPAddress.Loopback, new Uri(address).Port));
        return guest;
    }

    public async Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default)
    {
        Calls.Enqueue((callerMeshAddress, guestPort));
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(_endPoint, cancellationToken);
        return new NetworkStream(socket, ownsSocket: true);
    }

    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await _app.StopAsync(grace.Token);
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        HttpRequest request = context.Request;
        string text = $"{request.Method} {request.Path}{request.QueryString}\nversion={request.Protocol}\nhost={request.Host}\nxfcc={request.Headers["x-forwarded-client-cert"]}\n";
        context.Response.ContentType = "text/plain";
        if (request.Path != "/slow")
        {
            await context.Response.WriteAsync(text);
            return;
        }

        await context.Response.WriteAsync("first\n");
        await context.Response.Body.FlushAsync();
        SlowStarted.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            SlowAborted.TrySetResult();
        }
    }
}
