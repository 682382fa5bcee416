using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State;

/// <summary>
/// Serves Dapr's state API for one workload: <see cref="DaprHttpApi"/> over HTTP/1.1 and h2c on
/// the HTTP listener (Dapr's 3500) and <see cref="DaprGrpcService"/> over h2c on the gRPC listener
/// (Dapr's 50001), in one in-process Kestrel. Requests over
/// <see cref="StateApiLimits.MaxRequestBytes"/> are refused.
/// </summary>
public sealed class StateApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ListenOptions _http;
    private readonly ListenOptions _grpc;

    private StateApiServer(WebApplication app, ListenOptions http, ListenOptions grpc)
    {
        _app = app;
        _http = http;
        _grpc = grpc;
    }

    /// <summary>The bound HTTP address when it was bound from an address (its port resolved); null for a handed-over socket.</summary>
    public IPEndPoint? HttpEndPoint => _http.EndPoint as IPEndPoint;

    /// <summary>The bound gRPC address, as <see cref="HttpEndPoint"/>.</summary>
    public IPEndPoint? GrpcEndPoint => _grpc.EndPoint as IPEndPoint;

    /// <summary>Starts serving <paramref name="stores"/>.</summary>
    public static async Task<StateApiServer> StartAsync(
        StateStoreSet stores, StateApiListener http, StateApiListener grpc, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stores);
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(grpc);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddLogging();
        builder.Services.AddRoutingCore();
        builder.Services.AddGrpc(options =>
        {
            options.MaxReceiveMessageSize = StateApiLimits.MaxRequestBytes;
            options.EnableDetailedErrors = false;
        });
        builder.Services.AddSingleton(new DaprGrpcService(stores));
        ListenOptions? httpOptions = null;
        ListenOptions? grpcOptions = null;
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Above the API's own limit: the API answers with its own error body (never buffering more
            // than its limit) and Kestrel drains up to this much of the rest, so the client reads the
            // 413 instead of a reset; a body larger still gets its connection closed.
            kestrel.Limits.MaxRequestBodySize = 4L * StateApiLimits.MaxRequestBytes;
            Listen(kestrel, http, HttpProtocols.Http1AndHttp2, o => httpOptions = o);
            Listen(kestrel, grpc, HttpProtocols.Http2, o => grpcOptions = o);
        });
        WebApplication app = builder.Build();
        var api = new DaprHttpApi(stores);
        app.UseRouting();
        app.MapGrpcService<DaprGrpcService>();
        app.Map("/v1.0/{**rest}", api.HandleAsync);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new StateApiServer(app, httpOptions!, grpcOptions!);
    }

    private static void Listen(KestrelServerOptions kestrel, StateApiListener listener, HttpProtocols protocols, Action<ListenOptions> keep)
    {
        Action<ListenOptions> configure = o =>
        {
            o.Protocols = protocols;
            keep(o);
        };
        if (listener.Handle is ulong fd)
        {
            kestrel.ListenHandle(fd, configure);
        }
        else
        {
            kestrel.Listen(listener.EndPoint!, configure);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await _app.StopAsync(grace.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
