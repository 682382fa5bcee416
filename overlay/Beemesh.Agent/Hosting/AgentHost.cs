using Beemesh.Identity.Storage;
using Beemesh.Agent.Client;
using Beemesh.Agent.Mesh;
using Beemesh.Agent.Policies;
using Beemesh.Agent.State;
using Beemesh.Agent.Workloads;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;
using Beemesh.Identity.WorkloadApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Security.Cryptography.X509Certificates;

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

    /// <summary>File name of the revoked node names (one a line) inside <c>STATE/state/</c>.</summary>
    public const string RevokedNodesFileName = "revoked-nodes";

    /// <summary>File name of this node's claimed mesh address block inside <c>STATE/state/</c> (nodes with <see cref="AgentOptions.Listen"/>).</summary>
    public const string MeshBlockFileName = "mesh-block.json";

    /// <summary>File name of the stored registrations inside <c>STATE/state/</c>.</summary>
    public const string WorkloadsFileName = "workloads.json";

    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly WebApplication _admin;
    private readonly WorkloadApiServer _workloadApi;
    private readonly AdminApi _api;
    private readonly WorkloadReaper _reaper;
    private readonly NodeListener? _listener;
    private readonly Tunnel.SniTunnelRouter? _tunnelRouter;
    private Tunnel.TunnelHandoffServer? _tunnelHandoff;
    private readonly Tunnel.QuicTunnelRouter? _quicRouter;
    private readonly RouteSync? _routes;
    private readonly PolicySync? _policySync;
    private readonly JoinServer? _joinServer;
    private NodeCertificateRenewal? _renewal;
    private JwtKeySync? _jwtKeys;
    private Func<CancellationToken, Task>? _renewNow;
    private int _disposed;

    private AgentHost(AgentOptions options, CertificateAuthority authority, WorkloadApiServer workloadApi, WebApplication admin, AdminApi api, string adminSocket,
        PolicyStore policies, WorkloadRegistry workloads, WorkloadReaper reaper, NodeIdentity? node, NodeListener? listener, JoinServer? joinServer, OverlayHost? overlay, RouteSync? routes, PolicySync? policySync, Tunnel.SniTunnelRouter? tunnelRouter, Tunnel.QuicTunnelRouter? quicRouter)
    {
        _quicRouter = quicRouter;
        _policySync = policySync;
        _routes = routes;
        Overlay = overlay;
        Node = node;
        _listener = listener;
        _joinServer = joinServer;
        Workloads = workloads;
        _reaper = reaper;
        _tunnelRouter = tunnelRouter;
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

    /// <summary>This node's identity among nodes; null for a mesh of one machine.</summary>
    public NodeIdentity? Node { get; }

    /// <summary>The overlay (membership, records); null for a mesh of one machine.</summary>
    public OverlayHost? Overlay { get; }

    /// <summary>Bound address of the node port (joins, overlay links); null without <see cref="AgentOptions.Listen"/>.</summary>
    public System.Net.IPEndPoint? NodeEndPoint => _listener?.LocalEndPoint;

    /// <summary>Bound address of the node's tunnel port (on loopback, any free port, without <see cref="AgentOptions.Listen"/>).</summary>
    public System.Net.IPEndPoint? TunnelEndPoint => _tunnelRouter?.Endpoint;

    /// <summary>The node's tunnel port router (its counters).</summary>
    public Tunnel.SniTunnelRouter? TunnelRouter => _tunnelRouter;

    /// <summary>The node's QUIC tunnel endpoint (its counters); null without <see cref="AgentOptions.Listen"/>, with QUIC off, or without libmsquic.</summary>
    public Tunnel.QuicTunnelRouter? QuicRouter => _quicRouter;

    /// <summary>Why the node serves no QUIC tunnel endpoint (for the start-up lines), or null when it does or runs without <see cref="AgentOptions.Listen"/>.</summary>
    public string? QuicOffReason { get; private set; }

    /// <summary>The block of the mesh CIDR this node hands out addresses from; null for a mesh of one machine or while it holds none.</summary>
    public System.Net.IPNetwork? MeshBlock => Overlay is null ? null : Workloads.AddressRange;

    /// <summary>Path of the SPIFFE Workload API socket.</summary>
    public string WorkloadApiSocketPath => _workloadApi.SocketPath;

    /// <summary>The Workload API server (its connection counters, for tests).</summary>
    internal WorkloadApiServer WorkloadApi => _workloadApi;

    /// <summary>The admin socket's connection limiter (its counters and change signal, for tests).</summary>
    internal Beemesh.Identity.WorkloadApi.ConnectionLimiter AdminConnections => _api.Metrics.AdminConnections!;

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

        if (options.RouteLease < TimeSpan.FromSeconds(3))
        {
            throw new ArgumentException("the route lease must be at least 3 s");
        }

        if (options.ReapInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("the reap interval must be positive", nameof(options));
        }

        if (NodeCertificateLifetime.CheckRenewAfter(options.NodeCertificateRenewAfter) is { } badShare)
        {
            throw new ArgumentException(badShare, nameof(options));
        }

        if (options.NodeCertificateRetryInterval <= TimeSpan.Zero || options.NodeCertificateValidity < TimeSpan.FromMinutes(1))
        {
            throw new ArgumentException("the node certificate retry interval must be positive and their validity at least 1 min", nameof(options));
        }

        string stateDirectory = Path.GetFullPath(options.StateDirectory);
        _ = new MeshAddressPool(options.MeshCidr); // a bad range is refused before anything is touched
        MeshBlockPlan? blockPlan = options.Listen is null ? null : new MeshBlockPlan(options.MeshCidr, options.MeshBlockPrefix);
        Directory.CreateDirectory(stateDirectory, OwnerOnlyDirectory);
        File.SetUnixFileMode(stateDirectory, OwnerOnlyDirectory);

        if (IsServing(Path.Combine(stateDirectory, AdminSocketName)))
        {
            // Starting would unlink the live sockets and silently take over another agent's workloads.
            throw new InvalidOperationException($"an agent is already running in {stateDirectory}");
        }

        // A node of a multi-node trust domain joins (or reuses its saved node credentials) before
        // anything is issued: its workloads' SPIFFE IDs are in the joined trust domain.
        NodeIdentity? node = await JoinIfNeededAsync(options, stateDirectory, cancellationToken).ConfigureAwait(false);

        // Policies and registrations survive a restart; a corrupt file refuses the start (naming
        // the file) rather than starting empty, which would fail open.
        string stored = Path.Combine(stateDirectory, StateFile.DirectoryName);
        Directory.CreateDirectory(stored, OwnerOnlyDirectory);
        DurableFile.RemoveLeftovers(stored);
        var policies = new PolicyStore(options.TimeProvider, Path.Combine(stored, PoliciesFileName));
        // A node of a mesh hands out addresses of its own block only; a node alone, of the whole range.
        string addressRange = blockPlan is null ? options.MeshCidr
            : MeshBlockKeeper.LoadOrChoose(blockPlan, NodeIds.Of(options.TrustDomain, options.NodeName!), Path.Combine(stored, MeshBlockFileName)).ToString();
        var registry = new WorkloadRegistry(options.TrustDomain, addressRange, options.TimeProvider, options.ProcRoot, Path.Combine(stored, WorkloadsFileName));

        ILogger meshLogger = loggerFactory?.CreateLogger("Beemesh.Agent.Mesh") ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        CertificateAuthority authority = CertificateAuthority.LoadOrCreate(stateDirectory, options.TrustDomain, options.TimeProvider);
        if (node is null && options.Listen is not null)
        {
            // The first node keeps its node SVID across restarts, until it is due for renewal.
            node = NodeIdentity.LoadOrIssueFromRoot(
                authority, options.NodeName!, stateDirectory, options.TimeProvider.GetUtcNow(), options.NodeCertificateRenewAfter, options.NodeCertificateValidity, out string? reissued);
            if (reissued is not null)
            {
                NodeCertificateLog.Reissued(meshLogger, reissued);
            }
        }
        var attestor = new RegisteredWorkloads(options.ProcRoot);
        foreach (WorkloadRecord restored in registry.List())
        {
            // The registry kept only processes whose start time still matches; one that ended since
            // fails here or is reaped at the first pass.
            (int registrarPid, ulong registrarStart) = registry.RegistrarOf(restored.Id);
            attestor.Register(restored.Pid, registry.IdentityOf(restored.Name, restored.Namespace), registrarPid, registrarStart);
        }

        var metrics = new AgentMetrics();
        WorkloadApiServer? workloadApi = null;
        NodeListener? listener = null;
        JoinServer? joinServer = null;
        OverlayHost? overlay = null;
        Tunnel.SniTunnelRouter? tunnelRouter = null;
        Tunnel.TunnelHandoffServer? handoff = null;
        Tunnel.QuicTunnelRouter? quicRouter = null;
        string? quicOff = null;
        MeshBlockKeeper? blocks = null;
        try
        {
            // Revocations outlive restarts: every node keeps the names it learnt and refuses them
            // from its start; the first node publishes them again, for nodes that start afresh.
            string revokedPath = Path.Combine(stored, RevokedNodesFileName);
            List<string> revoked = File.Exists(revokedPath)
                ? [.. File.ReadAllLines(revokedPath).Where(l => Beemesh.Identity.Authority.NodeNames.Check(l) is null).Distinct(StringComparer.Ordinal)]
                : [];
            if (options.Listen is not null)
            {
                joinServer = authority.HoldsRoot ? JoinServer.Create(authority, stateDirectory, node!.NodeName, meshLogger, options.TimeProvider) : null;
                NodeIdentity presented = node!;
                OverlayHost? overlayHolder = null;
                if (joinServer is not null)
                {
                    joinServer.NodeValidity = options.NodeCertificateValidity;
                    string[] revokedAtStart = [.. revoked];
                    string domain = authority.TrustDomain;
                    // Until the overlay runs, every renewal is refused (fail closed); the node retries.
                    joinServer.IsRevoked = name => revokedAtStart.Contains(name)
                        || overlayHolder is not { } o || o.Verifier.Revoked.ContainsKey(NodeIds.Of(domain, name));
                }

                listener = new NodeListener(
                    options.Listen,
                    () => presented.Context,
                    joinServer,
                    (tls, ct) => overlayHolder is { } h ? h.HandleInboundAsync(tls, ct) : Task.CompletedTask,
                    meshLogger);
                overlay = OverlayHost.Start(presented, listener.LocalEndPoint, options.Join, options.TimeProvider, meshLogger, new Beemesh.Overlay.OverlayOptions
                {
                    LeaseDuration = (long)options.RouteLease.TotalMicroseconds,
                    LeaseRenewInterval = (long)options.RouteLease.TotalMicroseconds / 3,
                });
                overlayHolder = overlay;
            }

            {
                string trustDomain = options.TrustDomain;
                // Sidecars take their connections from the tunnel port as descriptors over this socket;
                // only the process that registered a workload may take that workload's connections.
                string procRoot = options.ProcRoot;
                Tunnel.TunnelHandoffServer handoffServer = handoff = new Tunnel.TunnelHandoffServer(
                    Path.Combine(stateDirectory, Beemesh.Agent.Client.TunnelHandoff.SocketName),
                    (id, pid) => HandoffRefusal(registry, id, pid, procRoot),
                    meshLogger);
                handoffServer.Start();
                // A node of a mesh serves its tunnel port on the --listen address; a node alone serves it
                // on loopback (any free port) for the sidecars of this node that cannot be dialled (pods').
                tunnelRouter = new Tunnel.SniTunnelRouter(
                    options.Listen is not null ? new System.Net.IPEndPoint(options.Listen.Address, options.TunnelPort) : new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
                    serverName => TunnelServerName.TryParse(serverName, trustDomain, out string name, out string ns, out string? replica) ? registry.LocalTunnelEndpoint(name, ns, replica) : null,
                    options.TimeProvider,
                    meshLogger)
                {
                    HandOff = (serverName, connection) => TunnelServerName.TryParse(serverName, trustDomain, out string name, out string ns, out string? replica)
                        && registry.LocalWorkloadId(name, ns, replica) is { } id && handoffServer.TrySend(id, connection),
                };
                tunnelRouter.Start();
                registry.SetHandoffEndpoint(LocalEndpointOf(tunnelRouter.Endpoint));
                if (options.Listen is not null)
                {
                    (quicRouter, quicOff) = await StartQuicAsync(options, node!, tunnelRouter, registry, meshLogger, cancellationToken).ConfigureAwait(false);
                }
            }

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
            metrics.TunnelRouter = tunnelRouter;
            metrics.QuicRouter = quicRouter;
            var api = new AdminApi(registry, policies, attestor, authority, options, metrics, workloadApi.SocketPath, adminSocket);
            WebApplication admin = await StartAdminAsync(adminSocket, api, options, metrics, loggerFactory, cancellationToken).ConfigureAwait(false);
            api.Overlay = overlay;
            api.NodeName = node?.NodeName;
            if (overlay is not null)
            {
                var revokedLock = new object();
                foreach (string name in revoked)
                {
                    overlay.RestoreRevocation(name);
                }

                registry.SetRevokedNodes(revoked);
                quicRouter?.RefuseNodes(revoked);
                overlay.RevocationAdded += name =>
                {
                    // Sidecars learn it with the next workload watch answer and cut its connections.
                    registry.SetRevokedNodes(overlay.RevokedNames.Values);
                    // The QUIC endpoint cuts callers whose SVIDs the node issued at once.
                    quicRouter?.RefuseNodes(overlay.RevokedNames.Values);
                    lock (revokedLock)
                    {
                        if (!revoked.Contains(name))
                        {
                            revoked.Add(name);
                            try
                            {
                                DurableFile.Write(revokedPath, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', revoked) + "\n"));
                            }
                            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                            {
                                // Still refused while the agent runs; the first node publishes it again.
                                overlay.CountExternal("revocations_not_stored");
                            }
                        }
                    }
                };
                if (authority.HoldsRoot)
                {
                    foreach (string name in revoked)
                    {
                        await overlay.RevokeAsync(name, NodeRevocation.Sign(authority, name)).ConfigureAwait(false);
                    }
                }

                blocks = MeshBlockKeeper.Create(overlay, registry, blockPlan!, Path.Combine(stored, MeshBlockFileName), node!.NodeName, tunnelRouter!.Endpoint.ToString(),
                    loggerFactory?.CreateLogger("Beemesh.Agent.Mesh") ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
                    quicRouter?.Endpoint.ToString());
                await blocks.PublishNodeRecordAsync().ConfigureAwait(false);
            }

            RouteSync? routes = overlay is null ? null
                : new RouteSync(overlay, registry, node!.NodeName, options.TrustDomain, blocks!, blockPlan!, loggerFactory?.CreateLogger("Beemesh.Agent.Mesh") ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
                    options.TimeProvider, tunnelRouter is { } router ? addresses => { router.RefusePeers(addresses); quicRouter?.RefusePeers(addresses); } : null);
            PolicySync? policySync = overlay is null ? null
                : new PolicySync(overlay, policies, loggerFactory?.CreateLogger("Beemesh.Agent.Mesh") ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, options.TimeProvider);
            api.PolicySync = policySync;
            var reaper = new WorkloadReaper(registry, attestor, metrics, options.TimeProvider, options.ReapInterval);
            var host = new AgentHost(options, authority, workloadApi, admin, api, adminSocket, policies, registry, reaper, node, listener, joinServer, overlay, routes, policySync, tunnelRouter, quicRouter)
            {
                QuicOffReason = quicOff,
            };
            host._tunnelHandoff = handoff;
            if (overlay is not null)
            {
                // Every node's JWT signing key goes to every other node, so a JWT-SVID minted on one validates on all.
                host._jwtKeys = await JwtKeySync.StartAsync(overlay, authority, node!.NodeName, meshLogger).ConfigureAwait(false);
            }

            if (node is not null)
            {
                host.StartRenewal(stateDirectory, meshLogger);
                api.NodeCertificates = host.NodeCertificateStatus;
            }

            return host;
        }
        catch
        {
            if (quicRouter is not null)
            {
                await quicRouter.DisposeAsync().ConfigureAwait(false);
            }

            if (tunnelRouter is not null)
            {
                await tunnelRouter.DisposeAsync().ConfigureAwait(false);
            }

            if (handoff is not null)
            {
                await handoff.DisposeAsync().ConfigureAwait(false);
            }

            if (overlay is not null)
            {
                await overlay.DisposeAsync().ConfigureAwait(false);
            }

            if (listener is not null)
            {
                await listener.DisposeAsync().ConfigureAwait(false);
            }

            joinServer?.Dispose();
            node?.Dispose();
            if (workloadApi is not null)
            {
                await workloadApi.DisposeAsync().ConfigureAwait(false);
            }

            authority.Dispose();
            throw;
        }
    }

    /// <summary>Where this node's processes reach a listener bound to <paramref name="bound"/> (loopback for a wildcard address).</summary>
    internal static System.Net.IPEndPoint LocalEndpointOf(System.Net.IPEndPoint bound) =>
        bound.Address.Equals(System.Net.IPAddress.Any) ? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, bound.Port)
        : bound.Address.Equals(System.Net.IPAddress.IPv6Any) ? new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, bound.Port)
        : bound;

    /// <summary>
    /// Why process <paramref name="pid"/> may not take the tunnel connections of workload
    /// <paramref name="id"/>, or null when it may: it must be the live process that registered it.
    /// </summary>
    private static string? HandoffRefusal(WorkloadRegistry registry, string id, int pid, string procRoot)
    {
        (int registrar, ulong started) = registry.RegistrarOf(id);
        if (registrar == 0)
        {
            return "no such workload on this node";
        }

        if (registrar != pid)
        {
            return $"process {pid} did not register it";
        }

        return Beemesh.Spiffe.Processes.ProcessStat.Read(pid, procRoot)?.StartTime == started ? null : "the process that registered it has ended";
    }

    /// <summary>The socket sidecars take their tunnel connections from.</summary>
    public Tunnel.TunnelHandoffServer? TunnelHandoff => _tunnelHandoff;

    /// <summary>
    /// Starts the QUIC tunnel endpoint next to the TCP tunnel port when <see cref="AgentOptions.Quic"/>
    /// and libmsquic allow it: on <see cref="AgentOptions.QuicPort"/>, or the TCP tunnel port's number.
    /// Returns the router, or null and the reason it is off. A port asked for explicitly that cannot be
    /// bound fails the start; the default one only leaves QUIC off.
    /// </summary>
    private static async Task<(Tunnel.QuicTunnelRouter? Router, string? Off)> StartQuicAsync(
        AgentOptions options, NodeIdentity node, Tunnel.SniTunnelRouter tunnel, WorkloadRegistry registry, ILogger logger, CancellationToken cancellationToken)
    {
        if (!options.Quic)
        {
            return (null, "turned off (--quic-port off)");
        }

        if (!Tunnel.QuicTunnelRouter.IsSupported)
        {
            return (null, "libmsquic not found (install the libmsquic package from packages.microsoft.com to turn it on)");
        }

        string trustDomain = node.TrustDomain;
        var endpoint = new System.Net.IPEndPoint(options.Listen!.Address, options.QuicPort ?? tunnel.Endpoint.Port);
        try
        {
            return (await Tunnel.QuicTunnelRouter.StartAsync(
                endpoint,
                () => node.Context,
                node.Root,
                trustDomain,
                serverName => TunnelServerName.TryParse(serverName, trustDomain, out string name, out string ns, out string? replica) ? registry.LocalTunnelEndpoint(name, ns, replica) : null,
                options.TimeProvider,
                logger,
                cancellationToken: cancellationToken).ConfigureAwait(false), null);
        }
        catch (Exception e) when (options.QuicPort is null && e is InvalidOperationException or PlatformNotSupportedException)
        {
            return (null, e.Message);
        }
    }

    /// <summary>The exchange of JWT signing keys with other nodes; null without the overlay.</summary>
    internal JwtKeySync? JwtKeys => _jwtKeys;

    /// <summary>Renewals of this node's certificates; null for a mesh of one machine.</summary>
    internal NodeCertificateRenewal? Renewal => _renewal;

    /// <summary>Renews this node's certificates now (what the renewal does when they are due).</summary>
    internal Task RenewNodeCertificatesAsync(CancellationToken cancellationToken = default) =>
        (_renewNow ?? throw new InvalidOperationException("this agent has no node certificates (it runs without --listen or --join)"))(cancellationToken);

    // When the node SVID (and, on a joined node, the node CA) expire and are renewed, for the members report.
    private (DateTimeOffset NotAfter, DateTimeOffset RenewAt, long Renewals, string? LastError) NodeCertificateStatus()
    {
        X509Certificate2 svid = Node!.Svid;
        DateTimeOffset notAfter = new(svid.NotAfter.ToUniversalTime());
        if (!Authority.HoldsRoot)
        {
            using X509Certificate2 nodeCa = Authority.SigningCertificate;
            DateTimeOffset caNotAfter = new(nodeCa.NotAfter.ToUniversalTime());
            notAfter = caNotAfter < notAfter ? caNotAfter : notAfter;
        }

        return (notAfter, _renewal?.NextAttempt ?? notAfter, _renewal?.Renewals ?? 0, _renewal?.LastError);
    }

    // The first node renews its node SVID from its root; a joined node asks the root holder for a new
    // node CA and node SVID (new keys), authenticated by its current node SVID. One renewal at a time.
    private void StartRenewal(string stateDirectory, ILogger logger)
    {
        NodeIdentity node = Node!;
        CertificateAuthority authority = Authority;
        AgentOptions options = Options;
        var once = new SemaphoreSlim(1, 1);
        _renewNow = async ct =>
        {
            await once.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (authority.HoldsRoot)
                {
                    using X509Certificate2 svid = NodeIdentity.IssueSvid(authority, node.NodeName, options.NodeCertificateValidity);
                    RootNodeSvidStore.Save(stateDirectory, svid);
                    node.Replace(svid);
                }
                else
                {
                    using NodeCredentials current = NodeCredentialStore.Load(stateDirectory)
                        ?? throw new InvalidOperationException($"{stateDirectory} holds no node credentials to renew");
                    List<System.Net.EndPoint> endpoints = [.. options.Join];
                    if (Overlay is { } overlay)
                    {
                        foreach (System.Net.IPEndPoint known in await overlay.QueryAsync(n => MembersView.NodeEndpoints(n, overlay)).ConfigureAwait(false))
                        {
                            if (!endpoints.Any(e => e.Equals(known)))
                            {
                                endpoints.Add(known);
                            }
                        }
                    }

                    using NodeCredentials renewed = await NodeRenewalClient.RenewAsync(endpoints, current, options.TimeProvider, cancellationToken: ct).ConfigureAwait(false);
                    NodeCredentialStore.Replace(stateDirectory, renewed);
                    authority.ReplaceNodeCa(renewed.NodeCa);
                    node.Replace(renewed.NodeSvid);
                }

                NodeCertificateLog.Renewed(logger, node.Svid.SerialNumber, new DateTimeOffset(node.Svid.NotAfter.ToUniversalTime()), Due());
            }
            finally
            {
                once.Release();
            }
        };
        _renewal = new NodeCertificateRenewal(Due, _renewNow, options.NodeCertificateRetryInterval, options.TimeProvider, logger);

        DateTimeOffset Due()
        {
            DateTimeOffset due = NodeCertificateLifetime.RenewalTime(node.Svid, options.NodeCertificateRenewAfter);
            if (!authority.HoldsRoot)
            {
                using X509Certificate2 nodeCa = authority.SigningCertificate;
                DateTimeOffset caDue = NodeCertificateLifetime.RenewalTime(nodeCa, options.NodeCertificateRenewAfter);
                due = caDue < due ? caDue : due;
            }

            return due;
        }
    }

    // Joins with the token (or reuses the saved node credentials) and adopts the joined trust domain.
    // The first node of a trust domain (its root key here) joins nothing.
    private static async Task<NodeIdentity?> JoinIfNeededAsync(AgentOptions options, string stateDirectory, CancellationToken cancellationToken)
    {
        if (options.NodeName is not null && NodeNames.Check(options.NodeName) is string badName)
        {
            throw new ArgumentException("invalid --node-name: " + badName);
        }

        bool joined = NodeCredentialStore.Exists(stateDirectory);
        if (options.Join.Count == 0 && !joined)
        {
            if (options.Listen is not null && options.NodeName is null)
            {
                throw new ArgumentException("--listen needs --node-name (this node's name among the nodes)");
            }

            return null;
        }

        string? nodeName = options.NodeName;
        if (nodeName is null)
        {
            using NodeCredentials? saved = NodeCredentialStore.Load(stateDirectory);
            nodeName = saved?.NodeName ?? throw new ArgumentException("--join needs --node-name (this node's name among the nodes)");
            options.NodeName = nodeName;
        }

        using NodeCredentials credentials = await NodeJoin.EnsureJoinedAsync(
            stateDirectory, nodeName, options.Join, options.JoinToken, cancellationToken, options.TimeProvider).ConfigureAwait(false);
        options.TrustDomain = credentials.TrustDomain;
        return NodeIdentity.FromCredentials(credentials);
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
        if (_renewal is not null)
        {
            await _renewal.DisposeAsync().ConfigureAwait(false);
        }

        if (_policySync is not null)
        {
            await _policySync.DisposeAsync().ConfigureAwait(false);
        }

        if (_jwtKeys is not null)
        {
            await _jwtKeys.DisposeAsync().ConfigureAwait(false);
        }

        if (_routes is not null)
        {
            await _routes.DisposeAsync().ConfigureAwait(false);
        }

        if (_quicRouter is not null)
        {
            await _quicRouter.DisposeAsync().ConfigureAwait(false);
        }

        if (_tunnelRouter is not null)
        {
            await _tunnelRouter.DisposeAsync().ConfigureAwait(false);
        }

        if (_tunnelHandoff is not null)
        {
            await _tunnelHandoff.DisposeAsync().ConfigureAwait(false);
        }

        if (Overlay is not null)
        {
            await Overlay.DisposeAsync().ConfigureAwait(false);
        }

        if (_listener is not null)
        {
            await _listener.DisposeAsync().ConfigureAwait(false);
        }

        _joinServer?.Dispose();
        Node?.Dispose();
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
