using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Authorization;
using Beemesh.Sidecar.Http;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// The inbound half of the sidecar: Kestrel on HTTP/2 over TLS 1.3 with a required client SVID
/// (checked by <see cref="SpiffeTls"/> against the trust bundle). Each extended CONNECT stream is
/// authorized with the caller's identity, then spliced onto a connection into the workload from
/// <see cref="IGuestConnector"/> and tracked by <see cref="Connections"/> until it ends or is revoked.
/// </summary>
public sealed class TunnelServer : IAsyncDisposable
{
    private readonly TunnelServerOptions _options;
    private readonly IMeshDirectory _directory;
    private readonly IGuestConnector _guests;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private WebApplication? _app;
    private HttpPortServer? _http;
    private long _handshakes;

    private TunnelServer(TunnelServerOptions options, IMeshDirectory directory, IGuestConnector guests, LiveConnectionRegistry registry, ILogger logger, TimeProvider time)
    {
        _options = options;
        _directory = directory;
        _guests = guests;
        Connections = registry;
        _logger = logger;
        _time = time;
        Endpoint = options.ListenEndpoint;
    }

    /// <summary>Where the server listens (the real port when 0 was asked for).</summary>
    public IPEndPoint Endpoint { get; private set; }

    /// <summary>The live tunnelled connections, re-authorized on every change.</summary>
    public LiveConnectionRegistry Connections { get; }

    /// <summary>TLS handshakes started by callers so far (one per tunnel connection).</summary>
    public long HandshakesStarted => Interlocked.Read(ref _handshakes);

    /// <summary>Starts a server with the identity of <paramref name="source"/>.</summary>
    public static async Task<TunnelServer> StartAsync(
        TunnelServerOptions options,
        X509Source source,
        IMeshDirectory directory,
        IPolicySource policies,
        IGuestConnector guests,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(guests);
        loggerFactory ??= NullLoggerFactory.Instance;
        TimeProvider time = timeProvider ?? source.TimeProvider;
        ILogger logger = loggerFactory.CreateLogger("Beemesh.Sidecar.Tunnel");
        // A caller whose handshake SVID expired keeps its flows while it is still a mesh workload.
        // A caller whose SVID a revoked node issued is refused and cut, whatever its identity.
        var registry = new LiveConnectionRegistry(policies, source, null, logger, time, id => directory.ResolveIdentity(id) is not null,
            revokedIssuer: directory.RevokedIssuerOf);
        var server = new TunnelServer(options, directory, guests, registry, logger, time);
        if (options.HttpPorts.Count != 0)
        {
            server._http = await HttpPortServer.StartAsync(
                options, registry, guests, () => source.Current.DefaultSvid.Id.ToString(), loggerFactory, time, cancellationToken).ConfigureAwait(false);
        }

        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A caller behind another node's tunnel port runs TLS itself and sends :scheme http over
            // it; the connection is mutually authenticated either way, the scheme carries nothing.
            kestrel.AllowAlternateSchemes = true;
            kestrel.Limits.Http2.MaxStreamsPerConnection = options.MaxStreamsPerConnection;
            // Flow-control windows sized for bulk flows between sidecars on one host: the defaults
            // (768 KiB per stream) cap a stream at window / RTT.
            kestrel.Limits.Http2.InitialConnectionWindowSize = 32 << 20;
            kestrel.Limits.Http2.InitialStreamWindowSize = 8 << 20;
            // A tunnel stream is a long-lived TCP flow, not a request with a body to time out.
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(options.ListenEndpoint, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                // Middleware before UseHttps sees the raw connection, after it the finished handshake.
                listen.Use(next => context => HandshakeTimer.AroundAsync(next, context, time, registry.Counters.ServerHandshakes));
                listen.UseHttps(new TlsHandshakeCallbackOptions
                {
                    OnConnection = _ =>
                    {
                        Interlocked.Increment(ref server._handshakes);
                        SslServerAuthenticationOptions ssl = SpiffeTls.CreateServerOptions(source, static _ => true);
                        ssl.ApplicationProtocols = [SslApplicationProtocol.Http2];
                        return ValueTask.FromResult(ssl);
                    },
                });
                listen.Use(next => context => HandshakeTimer.CompletedAsync(next, context, time, registry.Counters.ServerHandshakes));
            });
        });
        try
        {
            WebApplication app = builder.Build();
            server._app = app;
            app.Run(server.HandleAsync);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The port is taken, or start-up was cancelled: release what was made before it.
            registry.Dispose();
            if (server._app is not null)
            {
                await server._app.DisposeAsync().ConfigureAwait(false);
            }

            if (server._http is not null)
            {
                await server._http.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        WebApplication started = server._app;
        string? address = started.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is not null && Uri.TryCreate(address, UriKind.Absolute, out Uri? uri))
        {
            server.Endpoint = new IPEndPoint(options.ListenEndpoint.Address, uri.Port);
        }

        return server;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Connections.Dispose();
        if (_app is not null)
        {
            // Live tunnels never finish on their own: give them a short grace, then abort.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await _app.StopAsync(grace.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        if (_http is not null)
        {
            await _http.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The caller's principal as policies name it: the SPIFFE ID without <c>spiffe://</c>.</summary>
    internal static string Principal(SpiffeId id) => id.TrustDomain + id.Path;

    /// <summary>The namespace from a Kubernetes-style path <c>/ns/&lt;ns&gt;/sa/&lt;sa&gt;</c>, or null.</summary>
    internal static string? NamespaceOf(SpiffeId id)
    {
        ReadOnlySpan<char> path = id.Path;
        if (!path.StartsWith("/ns/"))
        {
            return null;
        }

        path = path[4..];
        int slash = path.IndexOf('/');
        return slash < 0 ? path.ToString() : path[..slash].ToString();
    }

    private async Task HandleAsync(HttpContext context)
    {
        IHttpExtendedConnectFeature? connect = context.Features.Get<IHttpExtendedConnectFeature>();
        if (connect is not { IsExtendedConnect: true } || connect.Protocol != TunnelProtocol.Name
            || context.Request.Host.Port is not int port || port is < 1 or > 65535)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        // Kestrel completed the handshake with SpiffeTls, so the certificate is a verified SVID.
        X509Certificate2? certificate = context.Connection.ClientCertificate;
        if (certificate is null || SvidValidator.TryGetSpiffeId(certificate, out SpiffeId? caller) != SvidValidationResult.Valid)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        // A node removed from the mesh keeps certificates that still chain to the root: refuse
        // what it issued before anything else looks at the caller.
        if (_directory.RevokedIssuerOf(certificate) is { } revokedNode)
        {
            Log.RevokedIssuer(_logger, caller!.ToString(), port, revokedNode);
            Connections.Counters.CountDecision(allowed: false, LiveConnectionRegistry.TriggerNodeRevoked);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        // The workload sees the caller's mesh address as the connection's source; a caller the
        // directory does not know has none, and a made-up source would be a lie (or a martian
        // the guest drops), so it is refused like a denied one.
        MeshPeer? callerPeer = await _directory.ResolveIdentityAsync(caller!, context.RequestAborted).ConfigureAwait(false);
        if (callerPeer is null)
        {
            Log.UnknownCaller(_logger, caller!.ToString(), port);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        // A port declared HTTP is authorized per request (with method, path and host), not per flow:
        // deciding the flow as TCP would let a DENY on a path refuse every request.
        if (_http is not null && _options.HttpPorts.Contains(port))
        {
            await _http.ServeAsync(context, connect, new MeshCaller(caller!, certificate, callerPeer.MeshAddress, port)).ConfigureAwait(false);
            return;
        }

        var request = new AuthorizationRequest
        {
            WorkloadNamespace = _options.WorkloadNamespace,
            WorkloadLabels = _options.WorkloadLabels,
            SourcePrincipal = Principal(caller!),
            SourceNamespace = NamespaceOf(caller!),
            SourceAddress = callerPeer.MeshAddress,
            DestinationPort = port,
        };
        long changes = Connections.ChangeCount;
        AuthorizationDecision decision = Connections.Authorize(request);
        if (!decision.Allowed)
        {
            Connections.AuditDenied(caller!, request, decision);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        Stream guest;
        try
        {
            guest = await _guests.ConnectAsync(callerPeer.MeshAddress, port, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            Log.GuestConnectFailed(_logger, port, e.Message);
            context.Response.StatusCode = StatusCodes.Status502BadGateway;
            return;
        }

        Stream tunnel = await connect.AcceptAsync().ConfigureAwait(false);
        // Send the 200 HEADERS now: the caller's CONNECT completes on them, before any payload.
        await tunnel.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        var live = new LiveConnection(caller!, certificate, request, decision, _time.GetUtcNow(), () =>
        {
            // RST_STREAM towards the caller, RST towards the workload.
            context.Abort();
            StreamSplicer.Reset(guest);
        });
        using IDisposable registration = Connections.Add(live, changes);
        string? error = null;
        try
        {
            await StreamSplicer.SpliceAsync(
                new FramedInboundStream(tunnel),
                async () => await context.Response.CompleteAsync().ConfigureAwait(false),
                guest,
                () => StreamSplicer.ShutdownWrite(guest),
                live.Count,
                context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            error = e.Message;
            if (!live.IsRevoked)
            {
                context.Abort();
                StreamSplicer.Reset(guest);
            }
        }
        finally
        {
            await guest.DisposeAsync().ConfigureAwait(false);
            Log.FlowEnded(_logger, caller!.ToString(), port, error);
        }
    }
}
