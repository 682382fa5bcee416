using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
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
/// <remarks>
/// Most workloads never call the API, so the server starts on the first connection: both sockets
/// listen (and the kernel accepts into their backlogs) from <see cref="StartAsync"/> on, but
/// Kestrel, its threads and its buffers exist only once a connection arrived on either. If
/// Kestrel cannot start then, both sockets are closed (callers are refused, not left waiting).
/// </remarks>
public sealed class StateApiServer : IAsyncDisposable
{
    private readonly StateStoreSet _stores;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly FirstConnectionEndPoint _http;
    private readonly FirstConnectionEndPoint _grpc;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebApplication? _app;
    private FirstConnectionListenerFactory? _transport;
    private bool _disposed;

    private StateApiServer(StateStoreSet stores, ILoggerFactory loggerFactory, FirstConnectionEndPoint http, FirstConnectionEndPoint grpc)
    {
        _stores = stores;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Beemesh.Sidecar.State");
        _http = http;
        _grpc = grpc;
    }

    /// <summary>The bound HTTP address.</summary>
    public IPEndPoint? HttpEndPoint => _http.Socket.LocalEndPoint as IPEndPoint;

    /// <summary>The bound gRPC address.</summary>
    public IPEndPoint? GrpcEndPoint => _grpc.Socket.LocalEndPoint as IPEndPoint;

    /// <summary>True once the first connection started the server (it serves until disposed).</summary>
    public bool IsServing => _serving.Task.IsCompletedSuccessfully;

    /// <summary>Completes when the server started, after the first connection; faults if it could not start.</summary>
    public Task Serving => _serving.Task;

    /// <summary>Listens on both listeners and serves <paramref name="stores"/> from the first connection on.</summary>
    public static Task<StateApiServer> StartAsync(
        StateStoreSet stores, StateApiListener http, StateApiListener grpc, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stores);
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(grpc);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        cancellationToken.ThrowIfCancellationRequested();
        Socket httpSocket = Open(http);
        Socket grpcSocket;
        try
        {
            grpcSocket = Open(grpc);
        }
        catch
        {
            httpSocket.Dispose();
            throw;
        }

        var server = new StateApiServer(stores, loggerFactory, new FirstConnectionEndPoint(httpSocket), new FirstConnectionEndPoint(grpcSocket));
        _ = server.StartOnFirstConnectionAsync();
        return Task.FromResult(server);
    }

    private static Socket Open(StateApiListener listener)
    {
        if (listener.Handle is ulong fd)
        {
            return new Socket(new SafeSocketHandle(checked((IntPtr)(long)fd), ownsHandle: true));
        }

        var socket = new Socket(listener.EndPoint!.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(listener.EndPoint);
            socket.Listen(512);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task StartOnFirstConnectionAsync()
    {
        await Task.WhenAny(_http.First, _grpc.First).ConfigureAwait(false);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            WebApplication app = Build();
            try
            {
                await app.StartAsync().ConfigureAwait(false);
            }
            catch
            {
                await app.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            _app = app;
            Log.StateApiStarted(_logger);
            _serving.TrySetResult();
        }
        catch (Exception e)
        {
            // Fail closed: callers are refused rather than left in a backlog nobody serves.
            Log.StateApiFailed(_logger, e.Message);
            await _http.CloseAsync().ConfigureAwait(false);
            await _grpc.CloseAsync().ConfigureAwait(false);
            _serving.TrySetException(e);
        }
        finally
        {
            _gate.Release();
        }
    }

    private WebApplication Build()
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(_loggerFactory);
        builder.Services.AddLogging();
        builder.Services.AddRoutingCore();
        builder.Services.AddGrpc(options =>
        {
            options.MaxReceiveMessageSize = StateApiLimits.MaxRequestBytes;
            options.EnableDetailedErrors = false;
        });
        builder.Services.AddSingleton(new DaprGrpcService(_stores));
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Above the API's own limit: the API answers with its own error body (never buffering more
            // than its limit) and Kestrel drains up to this much of the rest, so the client reads the
            // 413 instead of a reset; a body larger still gets its connection closed.
            kestrel.Limits.MaxRequestBodySize = 4L * StateApiLimits.MaxRequestBytes;
            kestrel.Listen(_http, o => o.Protocols = HttpProtocols.Http1AndHttp2);
            kestrel.Listen(_grpc, o => o.Protocols = HttpProtocols.Http2);
        });
        _transport = new FirstConnectionListenerFactory(_loggerFactory);
        builder.Services.AddSingleton<IConnectionListenerFactory>(_transport);
        WebApplication app = builder.Build();
        var api = new DaprHttpApi(_stores);
        app.UseRouting();
        app.MapGrpcService<DaprGrpcService>();
        app.Map("/v1.0/{**rest}", api.HandleAsync);
        return app;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_app is { } app)
            {
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await app.StopAsync(grace.Token).ConfigureAwait(false);
                await app.DisposeAsync().ConfigureAwait(false);
            }

            _transport?.Dispose();
            await _http.CloseAsync().ConfigureAwait(false);
            await _grpc.CloseAsync().ConfigureAwait(false);
            _serving.TrySetCanceled();
        }
        finally
        {
            _gate.Release();
        }
    }
}
