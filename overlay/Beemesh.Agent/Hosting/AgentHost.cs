using Beemesh.Agent.Policies;
using Beemesh.Agent.State;
using Beemesh.Agent.Workloads;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Hosting;

/// <summary>
/// A running node agent: the trust domain's CA, the SPIFFE Workload API on
/// <c>STATE/agent.sock</c> (callers attested against the registered workloads) and the admin API
/// (HTTP/1.1 JSON) on <c>STATE/admin.sock</c>, which only the owner may connect to and which refuses
/// every caller that is a registered workload or descends from one.
/// </summary>
public sealed class AgentHost : IAsyncDisposable
{
    /// <summary>File name of the Workload API socket inside the state directory.</summary>
    public const string WorkloadApiSocketName = "agent.sock";

    /// <summary>File name of the admin socket inside the state directory.</summary>
    public const string AdminSocketName = "admin.sock";

    /// <summary>File name of the stored policies inside <c>STATE/state/</c>.</summary>
    public const string PoliciesFileName = "policies.json";

    /// <summary>File name of the stored registrations inside <c>STATE/state/</c>.</summary>
    public const string WorkloadsFileName = "workloads.json";

    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly WebApplication _admin;
    private readonly WorkloadApiServer _workloadApi;
    private readonly AdminApi _api;
    private readonly WorkloadReaper _reaper;
    private int _disposed;

    private AgentHost(AgentOptions options, CertificateAuthority authority, WorkloadApiServer workloadApi, WebApplication admin, AdminApi api, string adminSocket,
        PolicyStore policies, WorkloadRegistry workloads, WorkloadReaper reaper)
    {
        Workloads = workloads;
        _reaper = reaper;
        _api = api;
        Options = options;
        Authority = authority;
        _workloadApi = workloadApi;
        _admin = admin;
        AdminSocketPath = adminSocket;
        Policies = policies;
    }

    /// <summary>The settings the agent runs with.</summary>
    public AgentOptions Options { get; }

    /// <summary>The trust domain's CA.</summary>
    public CertificateAuthority Authority { get; }

    /// <summary>Path of the SPIFFE Workload API socket.</summary>
    public string WorkloadApiSocketPath => _workloadApi.SocketPath;

    /// <summary>Path of the admin API socket.</summary>
    public string AdminSocketPath { get; }

    internal PolicyStore Policies { get; }

    /// <summary>What the agent took over from its state directory, in one line (for the start-up log).</summary>
    public string RestoredState =>
        $"state: {Policies.Count} policies (version {Policies.Version}), {Workloads.Count} workloads restored, {Workloads.DroppedOnLoad} dropped (process gone)";

    internal WorkloadRegistry Workloads { get; }

    internal WorkloadReaper Reaper => _reaper;

    /// <summary>
    /// Creates the state directory (0700), loads the stored policies and registrations (keeping those
    /// whose process still runs), loads or creates the CA, starts both servers and the reaper of gone
    /// workloads. Throws <see cref="ArgumentException"/> for bad options and
    /// <see cref="InvalidOperationException"/> when stored state is corrupt (naming the file) or the
    /// stored CA does not fit the options.
    /// </summary>
    public static async Task<AgentHost> StartAsync(AgentOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.StateDirectory, nameof(options.StateDirectory));
        if (CertificateAuthority.CheckX509SvidTtl(options.X509SvidTtl) is { } badTtl)
        {
            throw new ArgumentException(badTtl, nameof(options));
        }

        if (options.ReapInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("the reap interval must be positive", nameof(options));
        }

        string stateDirectory = Path.GetFullPath(options.StateDirectory);
        _ = new MeshAddressPool(options.MeshCidr); // a bad range is refused before anything is touched
        Directory.CreateDirectory(stateDirectory, OwnerOnlyDirectory);
        File.SetUnixFileMode(stateDirectory, OwnerOnlyDirectory);

        if (IsServing(Path.Combine(stateDirectory, AdminSocketName)))
        {
            // Starting would unlink the live sockets and silently take over another agent's workloads.
            throw new InvalidOperationException($"an agent is already running in {stateDirectory}");
        }

        // Policies and registrations survive a restart; a corrupt file refuses the start (naming
        // the file) rather than starting empty, which would fail open.
        string stored = Path.Combine(stateDirectory, StateFile.DirectoryName);
        Directory.CreateDirectory(stored, OwnerOnlyDirectory);
        DurableFile.RemoveLeftovers(stored);
        var policies = new PolicyStore(options.TimeProvider, Path.Combine(stored, PoliciesFileName));
        var registry = new WorkloadRegistry(options.TrustDomain, options.MeshCidr, options.TimeProvider, options.ProcRoot, Path.Combine(stored, WorkloadsFileName));

        CertificateAuthority authority = CertificateAuthority.LoadOrCreate(stateDirectory, options.TrustDomain);
        var attestor = new RegisteredWorkloads(options.ProcRoot);
        foreach (Client.WorkloadRecord restored in registry.List())
        {
            // The registry kept only processes whose start time still matches; one that ended since
            // fails here or is reaped at the first pass.
            (int registrarPid, ulong registrarStart) = registry.RegistrarOf(restored.Id);
            attestor.Register(restored.Pid, registry.IdentityOf(restored.Name, restored.Namespace), registrarPid, registrarStart);
        }

        var metrics = new AgentMetrics();
        WorkloadApiServer? workloadApi = null;
        try
        {
            workloadApi = await WorkloadApiServer.StartAsync(
                new WorkloadApiServerOptions
                {
                    SocketPath = Path.Combine(stateDirectory, WorkloadApiSocketName),
                    X509SvidTtl = options.X509SvidTtl,
                    MaxConnections = options.WorkloadApiMaxConnections,
                    MaxConnectionsPerProcess = options.WorkloadApiMaxConnectionsPerProcess,
                },
                authority,
                attestor,
                loggerFactory: loggerFactory,
                cancellationToken: cancellationToken).ConfigureAwait(false);

            string adminSocket = Path.Combine(stateDirectory, AdminSocketName);
            metrics.WorkloadApi = workloadApi;
            var api = new AdminApi(registry, policies, attestor, authority, options, metrics, workloadApi.SocketPath, adminSocket);
            WebApplication admin = await StartAdminAsync(adminSocket, api, options, metrics, loggerFactory, cancellationToken).ConfigureAwait(false);
            var reaper = new WorkloadReaper(registry, attestor, metrics, options.TimeProvider, options.ReapInterval);
            return new AgentHost(options, authority, workloadApi, admin, api, adminSocket, policies, registry, reaper);
        }
        catch
        {
            if (workloadApi is not null)
            {
                await workloadApi.DisposeAsync().ConfigureAwait(false);
            }

            authority.Dispose();
            throw;
        }
    }

    private static bool IsServing(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            return false;
        }

        using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            probe.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    private static async Task<WebApplication> StartAdminAsync(string socketPath, AdminApi api, AgentOptions options, AgentMetrics metrics, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        if (File.Exists(socketPath))
        {
            File.Delete(socketPath);
        }

        var limiter = new ConnectionLimiter(options.AdminMaxConnections, options.AdminMaxConnectionsPerProcess);
        metrics.AdminConnections = limiter;
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (loggerFactory is not null)
        {
            builder.Services.AddSingleton(loggerFactory);
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Bodies are bounded by AdminApi itself, which answers 413 with a clear message.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.ListenUnixSocket(socketPath, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                listen.Use(AdminApi.AcceptMiddleware(limiter, options.ProcRoot));
            });
        });
        WebApplication app = builder.Build();
        app.Run(api.HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        // The socket is created with the process umask; the 0700 state directory already keeps other
        // users from reaching it in the moment before this narrows the socket itself to its owner.
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return app;
    }

    /// <summary>Stops both servers, removes their sockets and releases the CA. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _reaper.Dispose();
        _api.Stop();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await _admin.StopAsync(timeout.Token).ConfigureAwait(false);
        }

        await _admin.DisposeAsync().ConfigureAwait(false);
        File.Delete(AdminSocketPath);
        await _workloadApi.DisposeAsync().ConfigureAwait(false);
        Authority.Dispose();
    }
}
