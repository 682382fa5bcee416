using System.Security.Cryptography.X509Certificates;
using System.Net;
using System.Net.Sockets;
using Beemesh.Agent.Client;
using Beemesh.Netstack.Stack;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Outbound;
using Beemesh.Sidecar.Telemetry;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Sidecar.Tunnel.Quic;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// Turns a workload's stack into a mesh member: registers the workload with the node agent,
/// takes its SVID from the Workload API, serves the mTLS tunnel for inbound callers (verify,
/// authorize continuously, open TCP into the guest from the caller's mesh address), sends guest
/// connections to mesh addresses through tunnels, and answers mesh names in DNS.
/// </summary>
public sealed class MeshSidecar : IAsyncDisposable
{
    private readonly AgentClient _agent;
    private readonly WorkloadRegistration _registration;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _reporting = new(1, 1);
    private volatile WorkloadRecord _record;
    private readonly X509Source _source;
    private readonly AgentMeshDirectory _directory;
    private readonly AgentPolicySource _policies;
    private readonly TunnelServer _tunnel;
    private readonly TunnelClientPool _pool;
    private readonly OutboundListener? _outbound;
    private readonly MeshDnsServer? _dns;
    private readonly CancellationTokenSource _stop = new();
    private System.Security.Cryptography.X509Certificates.X509Certificate2? _ownSvid;
    private readonly Task _warmUp;
    private readonly string _agentDirectory;
    private TunnelHandoffClient? _handoff;

    private MeshSidecar(AgentClient agent, WorkloadRegistration registration, WorkloadRecord record, X509Source source, AgentMeshDirectory directory,
        AgentPolicySource policies, TunnelServer tunnel, TunnelClientPool pool, OutboundListener? outbound, MeshDnsServer? dns, ILogger logger,
        string agentDirectory)
    {
        _agentDirectory = agentDirectory;
        _agent = agent;
        _registration = registration;
        _logger = logger;
        _record = record;
        _source = source;
        _directory = directory;
        _policies = policies;
        _tunnel = tunnel;
        _pool = pool;
        _outbound = outbound;
        _dns = dns;
        _ownSvid = source.HasContext ? source.Current.DefaultSvid.Certificate : null;
        source.Updated += OnSvidUpdated;
        directory.Changed += OnDirectoryChanged;
        policies.Changed += OnPoliciesChanged;
        _ = ReportLoopAsync();
        _warmUp = WarmUpTlsAsync();
    }

    /// <summary>
    /// Pays the process's one-time TLS costs (TLS library state, the SVID's certificate context,
    /// certificate stores, chain building) with a self-handshake now, in the background, instead of
    /// in the first tunnel handshake, when a caller waits on it (loadtests/reports/overlay-mesh.md).
    /// </summary>
    private async Task WarmUpTlsAsync()
    {
        await Task.Yield();
        TimeProvider time = _source.TimeProvider;
        long start = time.GetTimestamp();
        string outcome;
        try
        {
            outcome = _source.HasContext
                && await SpiffeTls.WarmUpAsync(_source, _source.Current.DefaultSvid.Id, [System.Net.Security.SslApplicationProtocol.Http2], _stop.Token).ConfigureAwait(false)
                ? "succeeded" : "did not complete";
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException or System.Security.Cryptography.CryptographicException)
        {
            outcome = "failed: " + e.Message;
        }

        Log.TlsWarmedUp(_logger, outcome, (long)time.GetElapsedTime(start).TotalMilliseconds);
    }

    /// <summary>
    /// The agent's list changed: cut live flows from callers that left the mesh (their process is
    /// gone) and, in both directions, those whose peer's SVID a node removed from the mesh issued;
    /// when this workload is not in a list from a restarted agent, register again now.
    /// </summary>
    private void OnDirectoryChanged(object? sender, EventArgs e)
    {
        _tunnel.Connections.RevokeFromRevokedNodes();
        int closed = _pool.CloseRevoked();
        if (_pool.Quic is { } quic && _directory.RevokedNodes.Count > 0 && quic.CloseRevoked(_directory.RevokedNodes) is > 0 and int quicClosed)
        {
            Log.QuicRevoked(_logger, quicClosed);
        }

        if (closed > 0)
        {
            Log.OutboundRevoked(_logger, closed);
        }

        _tunnel.Connections.RevokeDeparted(id => _directory.ResolveIdentity(id) is not null);
        if (!_directory.ContainsWorkload(_record.Id) && !_stop.IsCancellationRequested)
        {
            _ = ReportAsync(_stop.Token);
        }
    }

    /// <summary>A new policy set is in force: tell the agent now, so <c>beemesh status</c> shows which sidecars enforce it.</summary>
    private void OnPoliciesChanged(object? sender, EventArgs e)
    {
        if (!_stop.IsCancellationRequested)
        {
            _ = ReportAsync(_stop.Token);
        }
    }

    /// <summary>Counts a rotation when the Workload API hands over an SVID other than the one we had (bundle-only updates resend the same one).</summary>
    private void OnSvidUpdated(object? sender, X509Context context)
    {
        var svid = context.DefaultSvid.Certificate;
        if (context.DefaultSvid.Intermediates.Count > 0)
        {
            // Built now rather than by the first handshake with the new SVID (which retries it if this fails).
            try
            {
                SpiffeTls.CertificateContextFor(context.DefaultSvid);
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
            }
        }

        var previous = Interlocked.Exchange(ref _ownSvid, svid);
        if (previous is not null && !previous.Equals(svid))
        {
            Counters.CountSvidRotation();
        }
    }

    /// <summary>The inbound tunnel server (where the workload's replicas on other nodes reach its state stores too).</summary>
    public TunnelServer Tunnel => _tunnel;

    /// <summary>The sidecar's mesh counters (inbound, outbound handshakes, decisions, revocations, rotations).</summary>
    public MeshCounters Counters => _tunnel.Connections.Counters;

    /// <summary>The report the agent gets: live inbound connections (for <c>beemesh status</c>) and the cumulative counters (for <c>/metrics</c>).</summary>
    private ConnectionReport BuildReport()
    {
        var live = _tunnel.Connections.Connections
            .Where(c => !c.IsRevoked)
            .Select(c => new Agent.Client.LiveConnection
            {
                Peer = c.Caller.ToString(),
                Port = c.Request.DestinationPort,
                Direction = "inbound",
                Policy = c.Decision.PolicyName is { } name ? $"{c.Decision.PolicyNamespace}/{name}" : c.Decision.Outcome.ToString(),
                Rule = c.Decision.RuleIndex,
            })
            .ToList();
        X509Certificate2? svid = _source.HasContext ? _source.Current.DefaultSvid.Certificate : null;
        (string? Epoch, long Version) list = _directory.Position;
        return new ConnectionReport
        {
            WorkloadId = _record.Id,
            Connections = live,
            Mesh = MeshCounterReports.From(Counters, live.Count),
            SvidSerial = svid?.SerialNumber,
            SvidNotAfter = svid is null ? null : new DateTimeOffset(svid.NotAfter.ToUniversalTime()),
            PolicyVersion = _policies.Version,
            WorkloadListEpoch = list.Epoch,
            WorkloadListVersion = list.Version >= 0 ? list.Version : null,
        };
    }

    /// <summary>Every 2 s, sends the agent the current report.</summary>
    private async Task ReportLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(2), _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await ReportAsync(_stop.Token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends the report; when the agent answers that it does not know this workload (it restarted
    /// without it in its state), registers again with the same name, namespace, pid, ports and tunnel.
    /// </summary>
    private async Task ReportAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _reporting.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            await _agent.ReportConnectionsAsync(BuildReport(), cancellationToken).ConfigureAwait(false);
        }
        catch (AgentApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            WorkloadRecord old = _record;
            Log.Reregistering(_logger, old.Id, old.Name, old.Namespace);
            try
            {
                WorkloadRecord record = await _agent.RegisterWorkloadAsync(_registration, cancellationToken).ConfigureAwait(false);
                _record = record;
                Log.Reregistered(_logger, record.Id, record.SpiffeId, record.MeshAddress);
                // A new registration has a new id: the channel for the old one is refused or gone.
                TunnelHandoffClient? handoff = await TunnelHandoffClient.OpenAsync(
                    _agentDirectory, record.Id, _tunnel.ServeAccepted, _logger, cancellationToken, OnAgentGone).ConfigureAwait(false);
                Interlocked.Exchange(ref _handoff, handoff)?.Dispose();
            }
            catch (Exception again) when (again is HttpRequestException or AgentApiException or System.Text.Json.JsonException)
            {
                Log.ReregisterFailed(_logger, again.Message);
            }
            catch (OperationCanceledException)
            {
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is HttpRequestException or AgentApiException)
        {
            // The agent is restarting; the next report catches up.
        }
        finally
        {
            _reporting.Release();
        }
    }

    /// <summary>
    /// The agent closed the handoff channel (it stopped or died): connections it handed over are
    /// cut, as relayed ones end with the agent, and the channel is opened again once it is back.
    /// </summary>
    private void OnAgentGone()
    {
        int cut = _tunnel.AbortHandedOff();
        Log.TunnelHandoffLost(_logger, cut);
        _ = ReopenHandoffAsync();
    }

    private async Task ReopenHandoffAsync()
    {
        while (!_stop.IsCancellationRequested && _handoff is not { IsOpen: true })
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), _source.TimeProvider, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // Quiet while the agent is away; a restarted agent that lost this registration is met by
            // the report loop, which registers again and opens the channel for the new id.
            TunnelHandoffClient? handoff = await TunnelHandoffClient.OpenAsync(
                _agentDirectory, _record.Id, _tunnel.ServeAccepted, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, _stop.Token, OnAgentGone).ConfigureAwait(false);
            if (handoff is not null)
            {
                if (_stop.IsCancellationRequested || _handoff is { IsOpen: true })
                {
                    handoff.Dispose();
                    return;
                }

                Interlocked.Exchange(ref _handoff, handoff)?.Dispose();
                return;
            }
        }
    }

    /// <summary>This workload's registration (SPIFFE ID, mesh address).</summary>
    public WorkloadRecord Workload => _record;

    /// <summary>The workload's SVIDs and trust bundles, kept current from the Workload API.</summary>
    public X509Source Source => _source;

    /// <summary>Where the stack's DNS forwarder should send queries (stack mode only).</summary>
    public IPEndPoint DnsEndPoint => _dns?.EndPoint ?? throw new InvalidOperationException("no stack: no DNS server");

    /// <summary>The mesh as this sidecar sees it.</summary>
    public AgentMeshDirectory Directory => _directory;

    /// <summary>
    /// Where this sidecar's network reaches the node's loopback, or null when it is the node's own
    /// (a sidecar in a pod behind slirp4netns reaches it at 10.0.2.2). Tunnels to workloads whose
    /// tunnel endpoint is a loopback address (this node's) are dialled there instead.
    /// </summary>
    public IPAddress? NodeLoopback { get; set; }

    /// <summary>
    /// Opens a tunnelled stream to port <paramref name="port"/> of <paramref name="service"/>
    /// (<c>NAME.NAMESPACE</c>, or <c>NAME.NAMESPACE.svc.cluster.local</c>), as a guest flow to its mesh
    /// address would be carried; throws <see cref="IOException"/> when the mesh does not know it or
    /// its sidecar refuses the flow.
    /// </summary>
    public async Task<Stream> OpenServiceAsync(string service, int port, CancellationToken cancellationToken)
    {
        // A replica per connection, among all of the name's (this node's and other nodes').
        MeshPeer peer = _directory.PickServiceReplica(service) ?? throw new IOException($"{service} is not a known mesh service");
        if (NodeLoopback is { } gateway && IPAddress.IsLoopback(peer.TunnelEndpoint.Address))
        {
            peer = peer with { TunnelEndpoint = new IPEndPoint(gateway, peer.TunnelEndpoint.Port) };
        }

        return await _pool.OpenAsync(peer, port, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pooled mTLS tunnels to peers.</summary>
    public TunnelClientPool Pool => _pool;

    /// <summary>The channel taking cross-node connections from the agent as descriptors; null when the agent relays them.</summary>
    public TunnelHandoffClient? Handoff => _handoff;

    /// <summary>Live inbound tunnelled connections.</summary>
    public LiveConnectionRegistry Connections => _tunnel.Connections;

    /// <summary>Registers the workload and starts every piece for a workload behind our stack; the stack must not run yet.</summary>
    public static Task<MeshSidecar> StartAsync(
        string agentDirectory, string name, string @namespace, IReadOnlyList<WorkloadPort> ports, NetworkStack stack,
        IPEndPoint dnsUpstream, string meshCidr, ILoggerFactory loggerFactory, CancellationToken cancellationToken) =>
        StartAsync(agentDirectory, name, @namespace, ports, new NetstackGuestConnector(stack), new IPEndPoint(IPAddress.Loopback, Beemesh.Sidecar.LoopbackPort.Free()),
            stack, dnsUpstream, meshCidr, loggerFactory, cancellationToken);

    /// <summary>
    /// Registers the workload and starts the sidecar. With a <paramref name="stack"/>, guest flows to
    /// mesh addresses are claimed and mesh names answered; without one (a sidecar sharing its pod's
    /// network), only the inbound tunnel runs and callers use <see cref="Pool"/> themselves.
    /// </summary>
    public static async Task<MeshSidecar> StartAsync(
        string agentDirectory, string name, string @namespace, IReadOnlyList<WorkloadPort> ports, IGuestConnector guests,
        IPEndPoint tunnelListen, NetworkStack? stack, IPEndPoint? dnsUpstream, string meshCidr, ILoggerFactory loggerFactory,
        CancellationToken cancellationToken)
    {
        (TimeSpan? keepAlive, TimeSpan keepAliveTimeout) = KeepAliveFromEnvironment();
        // Meanwhile the platform's certificate stores load (once per process), which the first handshake would otherwise wait for.
        _ = SpiffeTls.PreloadPlatformCertificateStores();
        var agent = new AgentClient(agentDirectory);
        var registration = new WorkloadRegistration
        {
            Name = name,
            Namespace = @namespace,
            // Without a stack this is a sidecar container, whose pid numbers are its PID namespace's:
            // 0 registers the calling process as the agent sees it.
            Pid = stack is null ? 0 : Environment.ProcessId,
            Ports = [.. ports],
        };
        (Socket tunnelListener, WorkloadRecord record) = await RegisterListeningAsync(tunnelListen, registration, agent.RegisterWorkloadAsync, cancellationToken).ConfigureAwait(false);
        ILogger logger = loggerFactory.CreateLogger("beemesh.mesh");
        TunnelServer tunnel;
        AgentMeshDirectory directory;
        AgentPolicySource policies;
        X509Source source;
        try
        {
            // SPIFFE_ENDPOINT_SOCKET wins, so a SPIRE agent can stand in for ours.
            var client = Environment.GetEnvironmentVariable("SPIFFE_ENDPOINT_SOCKET") is not null
                ? WorkloadApiClient.FromEnvironment()
                : new WorkloadApiClient(Path.Combine(agentDirectory, "agent.sock"));
            source = await X509Source.StartAsync(client, null, cancellationToken).ConfigureAwait(false);
            directory = new AgentMeshDirectory(agent, IPNetwork.Parse(meshCidr));
            await directory.LoadAsync(cancellationToken).ConfigureAwait(false);
            policies = new AgentPolicySource(agent, logger);
            await policies.LoadAsync(cancellationToken).ConfigureAwait(false);
            tunnel = await TunnelServer.StartAsync(
                new TunnelServerOptions
                {
                    Listener = tunnelListener,
                    WorkloadNamespace = @namespace,
                    HttpPorts = HttpPortsOf(ports),
                    KeepAliveInterval = keepAlive,
                    KeepAliveTimeout = keepAliveTimeout,
                },
                source, directory, policies, guests, loggerFactory, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            tunnelListener.Dispose();
            throw;
        }

        // QUIC to other nodes only where libmsquic is present (and not turned off); the pool falls back to TCP per node.
        QuicTunnelClient? quic = QuicTunnelClient.ShouldUse() ? new QuicTunnelClient(source, () => directory.RevokedNodes) : null;
        var pool = new TunnelClientPool(source, tunnel.Connections.Counters, directory.RevokedIssuerOf, quic, logger: logger,
            options: new TunnelClientPoolOptions { KeepAliveInterval = keepAlive, KeepAliveTimeout = keepAliveTimeout });
        OutboundListener? outbound = null;
        MeshDnsServer? dns = null;
        if (stack is not null)
        {
            outbound = new OutboundListener(directory, pool, loggerFactory.CreateLogger("beemesh.outbound"));
            stack.FlowAcceptor = outbound; // in process: no loopback listener, no socket per flow
            dns = new MeshDnsServer(directory.ResolveName, dnsUpstream ?? new IPEndPoint(IPAddress.Loopback, 53));
        }

        var sidecar = new MeshSidecar(agent, registration, record, source, directory, policies, tunnel, pool, outbound, dns, logger, agentDirectory);
        // Connections from other nodes come straight from the tunnel port as descriptors when the agent can hand them over.
        sidecar._handoff = await TunnelHandoffClient.OpenAsync(
            agentDirectory, record.Id, tunnel.ServeAccepted, logger, cancellationToken, sidecar.OnAgentGone).ConfigureAwait(false);
        return sidecar;
    }

    /// <summary>
    /// Binds the tunnel endpoint first and registers the workload with it after: the agent publishes
    /// the workload's route (to this node's callers and, through the tunnel port, to other nodes') only
    /// once the endpoint listens, so an early caller waits in the backlog until the server accepts
    /// instead of being refused. Returns the listening socket (for <see cref="TunnelServerOptions.Listener"/>)
    /// and the registration.
    /// </summary>
    internal static async Task<(Socket Listener, WorkloadRecord Record)> RegisterListeningAsync(
        IPEndPoint tunnelListen, WorkloadRegistration registration, Func<WorkloadRegistration, CancellationToken, Task<WorkloadRecord>> register, CancellationToken cancellationToken)
    {
        Socket listener = TunnelServer.Listen(tunnelListen);
        try
        {
            var bound = (IPEndPoint)listener.LocalEndPoint!;
            registration.TunnelEndpoint = (bound.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, bound.Port) : bound).ToString();
            WorkloadRecord record = await register(registration, cancellationToken).ConfigureAwait(false);
            return (listener, record);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The tunnel keep-alive from <see cref="TunnelKeepAlive.Variable"/> (both sides of every tunnel
    /// connection of this sidecar); the defaults without it. A bad value is an <see cref="InvalidOperationException"/>
    /// before anything is registered.
    /// </summary>
    internal static (TimeSpan? Interval, TimeSpan Timeout) KeepAliveFromEnvironment()
    {
        try
        {
            return TunnelKeepAlive.Parse(Environment.GetEnvironmentVariable(TunnelKeepAlive.Variable));
        }
        catch (FormatException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
    }

    /// <summary>The ports declared <c>/http</c>: served and authorized per request.</summary>
    private static HashSet<int> HttpPortsOf(IReadOnlyList<WorkloadPort> ports)
    {
        var http = new HashSet<int>();
        foreach (WorkloadPort port in ports)
        {
            if (port.Protocol == "http")
            {
                http.Add(port.Port);
            }
        }

        return http;
    }

    /// <summary>Sends a last report (so the agent's totals include everything counted), unregisters and stops every piece.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _source.Updated -= OnSvidUpdated;
        await _warmUp.ConfigureAwait(false);
        _directory.Changed -= OnDirectoryChanged;
        _policies.Changed -= OnPoliciesChanged;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _agent.ReportConnectionsAsync(BuildReport(), timeout.Token).ConfigureAwait(false);
            await _agent.UnregisterWorkloadAsync(_record.Id, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or AgentApiException)
        {
            // The agent is gone or slow; its status shows the dead pid.
        }

        if (_dns is not null)
        {
            await _dns.DisposeAsync().ConfigureAwait(false);
        }

        if (_outbound is not null)
        {
            await _outbound.DisposeAsync().ConfigureAwait(false);
        }

        Interlocked.Exchange(ref _handoff, null)?.Dispose();
        await _tunnel.DisposeAsync().ConfigureAwait(false);
        _pool.Dispose();
        if (_pool.Quic is { } quic)
        {
            await quic.DisposeAsync().ConfigureAwait(false);
        }

        _policies.Dispose();
        _directory.Dispose();
        await _source.DisposeAsync().ConfigureAwait(false);
        _agent.Dispose();
    }
}
