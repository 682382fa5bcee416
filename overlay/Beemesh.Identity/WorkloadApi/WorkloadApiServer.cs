using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Processes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// The agent's embedded SPIFFE Workload API: Kestrel serving gRPC over HTTP/2 (prior knowledge,
/// no TLS, as the standard's unix-socket transport expects) on a unix socket. When a connection is
/// accepted, the calling process is bound (SO_PEERCRED, a pidfd and its start time, see
/// <see cref="CallerProcess"/>); every call, and every message of a stream, first checks that this
/// same process still runs, so a connection outliving its process never gets the identity of a
/// process that later receives the same pid. Connections are limited in total and per calling
/// process, per identity and for callers without one (<see cref="WorkloadApiServerOptions"/>);
/// refused ones are closed at accept and counted.
/// The socket file is made connectable by every user (0666): rootless workloads run under
/// other uids, and attestation, not file permissions, decides who gets an identity.
/// </summary>
public sealed class WorkloadApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _shutdown;
    private readonly ConnectionLimiter _limiter;

    private WorkloadApiServer(WebApplication app, CancellationTokenSource shutdown, string socketPath, ConnectionLimiter limiter)
    {
        _app = app;
        _shutdown = shutdown;
        SocketPath = socketPath;
        _limiter = limiter;
    }

    /// <summary>The unix socket the server listens on.</summary>
    public string SocketPath { get; }

    /// <summary>Connections currently open.</summary>
    public int OpenConnections => _limiter.Open;

    /// <summary>Connections closed at accept because the total limit was reached.</summary>
    public long RefusedTotalLimit => _limiter.RefusedTotal;

    /// <summary>Connections closed at accept because their process had reached its limit.</summary>
    public long RefusedPerProcessLimit => _limiter.RefusedPerProcess;

    /// <summary>Connections closed at accept because the caller's identity (or the pool of callers without one) was full.</summary>
    public long RefusedIdentityLimit => _limiter.RefusedGroup;

    /// <summary>Connections closed at accept because the caller's process could not be identified (gone already).</summary>
    public long RefusedUnidentified => _limiter.RefusedUnidentified;

    /// <summary>Completes once <paramref name="condition"/> holds over the connection counters above, re-checked whenever one changes.</summary>
    public Task WaitForConnectionCountsAsync(Func<WorkloadApiServer, bool> condition, CancellationToken cancellationToken) =>
        _limiter.WaitUntilAsync(_ => condition(this), cancellationToken);

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

        var limiter = new ConnectionLimiter(options.MaxConnections, options.MaxConnectionsPerProcess);
        ILogger logger = (loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("beemesh.workload-api");
        var refusalsSeen = new System.Runtime.CompilerServices.StrongBox<long>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestHeadersTotalSize = options.MaxHeaderBytes;
            kestrel.Limits.Http2.MaxStreamsPerConnection = options.MaxStreamsPerConnection;
            kestrel.Limits.Http2.MaxRequestHeaderFieldSize = options.MaxHeaderBytes;
            kestrel.Limits.KeepAliveTimeout = options.IdleTimeout;
            kestrel.Limits.MaxRequestBodySize = options.MaxMessageBytes + 5; // one gRPC frame: 5-byte prefix + message
            kestrel.ListenUnixSocket(socketPath, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(next => async connection =>
                {
                    CallerProcess? caller = connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket
                        ? CallerProcess.FromSocket(socket)
                        : null;
                    using (caller)
                    {
                        // Grouped by the identity the caller has now; callers without one share a small pool.
                        SpiffeId? id = caller is null ? null : attestor.Attest(new PeerCredentials(caller.ProcessId, caller.UserId, caller.GroupId));
                        IDisposable? slot = id is null
                            ? limiter.TryEnter(caller, "callers without an identity", options.MaxUnattestedConnections, out string? refusal)
                            : limiter.TryEnter(caller, id.ToString(), options.MaxConnectionsPerIdentity, out refusal);
                        if (slot is null)
                        {
                            // Anyone on the node may connect, so refusals are logged at the 1st, 2nd, 4th,
                            // 8th, ...: a flood cannot fill the log. Every refusal is counted in /metrics.
                            long refusals = Interlocked.Increment(ref refusalsSeen.Value);
                            if (System.Numerics.BitOperations.IsPow2(refusals))
                            {
                                logger.LogWarning("Workload API connection refused: {Reason} ({Refusals} refused so far; logged again at {Next})", refusal, refusals, refusals * 2);
                            }

                            return; // Kestrel closes the connection.
                        }

                        using (slot)
                        {
                            connection.Features.Set(new PeerCredentialsFeature(caller));
                            await next(connection).ConfigureAwait(false);
                        }
                    }
                });
            });
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = options.MaxMessageBytes;
        });
        // Streams end on this token at shutdown, so stopping does not wait for them to time out.
        var shutdown = new CancellationTokenSource();
        builder.Services.AddSingleton(new WorkloadApiService(authority, attestor, options, timeProvider ?? TimeProvider.System, random ?? Random.Shared, shutdown.Token));
        WebApplication app = builder.Build();
        app.MapGrpcService<WorkloadApiService>();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(socketPath,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        return new WorkloadApiServer(app, shutdown, socketPath, limiter);
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
