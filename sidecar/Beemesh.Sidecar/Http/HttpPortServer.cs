using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Beemesh.Authorization;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Sidecar.Tunnel.Http2;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// Serves the flows to ports declared HTTP: an in-process Kestrel whose only transport is tunnel
/// streams (<see cref="TunnelListenerFactory"/>). Each request is authorized on its own, with its
/// method, path and host (Istio's per-request semantics), refused with Envoy's 403, or forwarded
/// by YARP to the workload over HTTP/1.1 on a connection that comes from the caller's mesh address.
/// Every forwarded request stays in the <see cref="LiveConnectionRegistry"/> while in flight, so a
/// policy change that no longer allows it aborts it (HTTP/2: its stream; HTTP/1.1: its connection).
/// </summary>
internal sealed class HttpPortServer : IAsyncDisposable
{
    /// <summary>Envoy's RBAC filter body for a denied request; clients and tests match on it.</summary>
    public const string DeniedBody = "RBAC: access denied";

    private static readonly ForwarderRequestConfig UpstreamConfig = new()
    {
        // The workload gets HTTP/1.1 whatever the caller spoke: it is the one version every server speaks.
        Version = HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private readonly TunnelServerOptions _options;
    private readonly LiveConnectionRegistry _registry;
    private readonly IGuestConnector _guests;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TunnelListenerFactory _listeners = new();
    private readonly HttpMessageInvoker _upstream;
    private readonly MeshHttpTransformer _transformer;
    private WebApplication? _app;
    private IHttpForwarder? _forwarder;

    private HttpPortServer(TunnelServerOptions options, LiveConnectionRegistry registry, IGuestConnector guests, Func<string> workloadId, TimeProvider time, ILogger logger)
    {
        _options = options;
        _registry = registry;
        _guests = guests;
        _time = time;
        _logger = logger;
        _transformer = new MeshHttpTransformer(workloadId);
        _upstream = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ActivityHeadersPropagator = null,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            ConnectCallback = ConnectGuestAsync,
        });
    }

    /// <summary>Starts the in-process HTTP server; <paramref name="workloadId"/> gives this workload's SPIFFE ID for XFCC.</summary>
    public static async Task<HttpPortServer> StartAsync(
        TunnelServerOptions options, LiveConnectionRegistry registry, IGuestConnector guests, Func<string> workloadId,
        ILoggerFactory loggerFactory, TimeProvider time, CancellationToken cancellationToken)
    {
        var server = new HttpPortServer(options, registry, guests, workloadId, time, loggerFactory.CreateLogger("Beemesh.Sidecar.Http"));
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddLogging();
        builder.Services.AddSingleton<IConnectionListenerFactory>(server._listeners);
        builder.Services.AddHttpForwarder();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The workload decides how large a body it takes; a proxy in between should not.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(new TunnelEndPoint(HttpProtocols.Http1), listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(new TunnelEndPoint(HttpProtocols.Http2), listen => listen.Protocols = HttpProtocols.Http2);
        });
        WebApplication app = builder.Build();
        app.Run(server.HandleRequestAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        server._forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        server._app = app;
        return server;
    }

    /// <summary>
    /// Serves one authorized-to-connect tunnel flow as an HTTP connection until either side ends it.
    /// <paramref name="tunnel"/> is the CONNECT stream that carries it, already answered 200;
    /// aborting the HTTP connection resets that stream.
    /// </summary>
    public async Task ServeAsync(Http2Stream tunnel, MeshCaller caller)
    {
        PipeReader input = PipeReader.Create(tunnel, new StreamPipeReaderOptions(leaveOpen: true));
        PipeWriter output = PipeWriter.Create(tunnel, new StreamPipeWriterOptions(leaveOpen: true));
        string? error = null;
        try
        {
            CancellationToken aborted = tunnel.Aborted;
            bool http2 = await Http2Preface.IsHttp2Async(input, aborted).ConfigureAwait(false);
            var connection = new TunnelConnection(input, output, caller, () => tunnel.Reset(Http2ErrorCode.InternalError));
            await using CancellationTokenRegistration reset = aborted.Register(
                static state => ((TunnelConnection)state!).Abort(new ConnectionAbortedException("the tunnel stream was reset")), connection);
            if (!_listeners.TryEnqueue(connection, http2))
            {
                error = "the HTTP server is stopping";
                tunnel.Reset(Http2ErrorCode.RefusedStream);
                return;
            }

            await connection.Completion.ConfigureAwait(false);
            // Kestrel closed the connection after its last response: end the stream as a FIN would.
            await tunnel.ShutdownWriteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            error = e.Message;
            tunnel.Reset(Http2ErrorCode.InternalError);
        }
        finally
        {
            Log.HttpFlowEnded(_logger, caller.Id.ToString(), caller.Port, error);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await _app.StopAsync(grace.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        _upstream.Dispose();
    }

    /// <summary>Istio's <c>url_path</c>: the path without the query string (Kestrel already split it off).</summary>
    internal static HttpRequestAttributes Attributes(HttpRequest request)
    {
        var headers = new Dictionary<string, string>(request.Headers.Count, StringComparer.OrdinalIgnoreCase);
        foreach (KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues> header in request.Headers)
        {
            headers[header.Key] = header.Value.ToString();
        }

        return new HttpRequestAttributes
        {
            Method = request.Method,
            Path = request.PathBase.Add(request.Path) is { HasValue: true } path ? path.Value! : "/",
            Host = request.Host.HasValue ? request.Host.Value : null,
            Headers = headers,
        };
    }

    private async Task HandleRequestAsync(HttpContext context)
    {
        MeshCaller caller = context.Features.Get<MeshCaller>() ?? throw new InvalidOperationException("request without a tunnel caller");
        var request = new AuthorizationRequest
        {
            WorkloadNamespace = _options.WorkloadNamespace,
            WorkloadLabels = _options.WorkloadLabels,
            SourcePrincipal = TunnelServer.Principal(caller.Id),
            SourceNamespace = TunnelServer.NamespaceOf(caller.Id),
            SourceAddress = caller.MeshAddress,
            DestinationPort = caller.Port,
            Http = Attributes(context.Request),
        };
        long changes = _registry.ChangeCount;
        AuthorizationDecision decision = _registry.Authorize(request);
        if (!decision.Allowed)
        {
            _registry.AuditDenied(caller.Id, request, decision);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            context.Response.ContentType = "text/plain";
            context.Response.ContentLength = DeniedBody.Length; // ASCII: one byte per char
            await context.Response.WriteAsync(DeniedBody, context.RequestAborted).ConfigureAwait(false);
            return;
        }

        // Aborting the HttpContext resets just this stream on HTTP/2 and the whole connection on HTTP/1.1
        // (the only way to stop a response mid-body there).
        var live = new LiveConnection(caller.Id, caller.Certificate, request, decision, _time.GetUtcNow(), context.Abort);
        using IDisposable registration = _registry.Add(live, changes);
        if (live.IsRevoked)
        {
            return;
        }

        ForwarderError error = await _forwarder!.SendAsync(context, Destination(caller), _upstream, UpstreamConfig, _transformer).ConfigureAwait(false);
        if (error != ForwarderError.None)
        {
            string why = context.Features.Get<IForwarderErrorFeature>()?.Exception?.Message ?? error.ToString();
            Log.HttpForwardFailed(_logger, request.Http.Method, request.Http.Path, caller.Id.ToString(), caller.Port, why);
        }
    }

    /// <summary>
    /// The upstream authority encodes the caller's mesh address and the port: the handler pools
    /// connections per authority, and a connection into the workload carries its caller as its
    /// source address, so two callers must never share one.
    /// </summary>
    private static string Destination(MeshCaller caller) => caller.MeshAddress.AddressFamily == AddressFamily.InterNetworkV6
        ? $"http://[{caller.MeshAddress}]:{caller.Port}/"
        : $"http://{caller.MeshAddress}:{caller.Port}/";

    private async ValueTask<Stream> ConnectGuestAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        DnsEndPoint target = context.DnsEndPoint;
        if (!IPAddress.TryParse(target.Host.AsSpan().Trim("[]"), out IPAddress? callerAddress))
        {
            throw new HttpRequestException($"not a caller address: {target.Host}");
        }

        return await _guests.ConnectAsync(callerAddress, target.Port, cancellationToken).ConfigureAwait(false);
    }
}
