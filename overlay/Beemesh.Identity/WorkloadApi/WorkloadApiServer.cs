using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// The agent's embedded SPIFFE Workload API: Kestrel serving gRPC over HTTP/2 (prior knowledge,
/// no TLS, as the standard's unix-socket transport expects) on a unix socket. The caller's
/// SO_PEERCRED is read once per connection, before any request, and handed to the attestor.
/// The socket file is made connectable by every user (0666): rootless workloads run under
/// other uids, and attestation, not file permissions, decides who gets an identity.
/// </summary>
public sealed class WorkloadApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _shutdown;

    private WorkloadApiServer(WebApplication app, CancellationTokenSource shutdown, string socketPath)
    {
        _app = app;
        _shutdown = shutdown;
        SocketPath = socketPath;
    }

    /// <summary>The unix socket the server listens on.</summary>
    public string SocketPath { get; }

    /// <summary>Starts a server issuing from <paramref name="authority"/> to callers <paramref name="attestor"/> recognizes.</summary>
    /// <param name="options">Socket path and SVID lifetimes.</param>
    /// <param name="authority">The CA that signs SVIDs.</param>
    /// <param name="attestor">Maps a caller's credentials to its SPIFFE ID.</param>
    /// <param name="timeProvider">Clock for SVID rotation; the system clock by default.</param>
    /// <param name="random">Randomness for rotation jitter; a fresh shared instance by default.</param>
    /// <param name="loggerFactory">Logging; none by default.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static async Task<WorkloadApiServer> StartAsync(
        WorkloadApiServerOptions options,
        CertificateAuthority authority,
        IWorkloadAttestor attestor,
        TimeProvider? timeProvider = null,
        Random? random = null,
        ILoggerFactory? loggerFactory = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(attestor);
        ArgumentException.ThrowIfNullOrEmpty(options.SocketPath, nameof(options.SocketPath));
        string socketPath = options.SocketPath;
        if (File.Exists(socketPath))
        {
            File.Delete(socketPath);
        }

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (loggerFactory is not null)
        {
            builder.Services.AddSingleton(loggerFactory);
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ListenUnixSocket(socketPath, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(next => connection =>
                {
                    PeerCredentials? credentials = connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket
                        ? PeerCredentials.FromSocket(socket)
                        : null;
                    connection.Features.Set(new PeerCredentialsFeature(credentials));
                    return next(connection);
                });
            });
        });
        builder.Services.AddGrpc();
        // Streams end on this token at shutdown, so stopping does not wait for them to time out.
        var shutdown = new CancellationTokenSource();
        builder.Services.AddSingleton(new WorkloadApiService(authority, attestor, options, timeProvider ?? TimeProvider.System, random ?? Random.Shared, shutdown.Token));
        WebApplication app = builder.Build();
        app.MapGrpcService<WorkloadApiService>();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(socketPath,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        return new WorkloadApiServer(app, shutdown, socketPath);
    }

    /// <summary>Stops serving (open streams are cancelled) and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        await _shutdown.CancelAsync().ConfigureAwait(false);
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        }

        await _app.DisposeAsync().ConfigureAwait(false);
        _shutdown.Dispose();
        File.Delete(SocketPath);
    }
}
