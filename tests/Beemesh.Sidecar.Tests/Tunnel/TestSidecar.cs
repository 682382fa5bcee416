using System.Net;
using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Sidecar.Inbound;
using Beemesh.Sidecar.Mesh;
using Beemesh.Sidecar.Outbound;
using Beemesh.Sidecar.Tests.Http;
using Beemesh.Sidecar.Tunnel;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>One sidecar in the test process: its own Workload API server (its SVID), tunnel server, client pool and outbound listener.</summary>
internal sealed class TestSidecar : IAsyncDisposable
{
    private WorkloadApiServer _api = null!;
    private WorkloadApiClient _client = null!;

    public required SpiffeId Id { get; init; }

    public required IPAddress MeshAddress { get; init; }

    public X509Source Source { get; private set; } = null!;

    public InMemoryPolicySource Policies { get; } = new();

    public EchoGuestConnector Guest { get; } = new();

    /// <summary>The HTTP workload behind the ports declared HTTP; null when none are.</summary>
    public HttpGuest? HttpGuest { get; private set; }

    public TunnelServer Server { get; private set; } = null!;

    public TunnelClientPool Pool { get; private set; } = null!;

    public OutboundListener Outbound { get; private set; } = null!;

    public MeshPeer Peer => new(Id, Server.Endpoint, MeshAddress);

    /// <summary>The pool's QUIC client, when started with QUIC.</summary>
    public Beemesh.Sidecar.Tunnel.Quic.QuicTunnelClient? Quic { get; private set; }

    public static async Task<TestSidecar> StartAsync(CertificateAuthority authority, string socketPath, string path, IPAddress meshAddress, StaticMeshDirectory directory, TimeProvider? workloadApiTime = null, IReadOnlySet<int>? httpPorts = null,
        bool quic = false, TunnelClientPoolOptions? poolOptions = null, int maxStreamsPerConnection = 1000, TimeSpan? serverIdleTimeout = null, TimeProvider? serverTime = null,
        TimeSpan? serverKeepAlive = null, TimeProvider? keepAliveTime = null)
    {
        var sidecar = new TestSidecar { Id = SpiffeId.FromParts(authority.TrustDomain, path), MeshAddress = meshAddress };
        var workloads = new RegisteredWorkloads();
        Assert.True(workloads.Register(Environment.ProcessId, sidecar.Id));
        sidecar._api = await WorkloadApiServer.StartAsync(new WorkloadApiServerOptions { SocketPath = socketPath }, authority, workloads, workloadApiTime);
        sidecar._client = new WorkloadApiClient(socketPath);
        sidecar.Source = await X509Source.StartAsync(sidecar._client);
        httpPorts ??= new HashSet<int>();
        if (httpPorts.Count != 0)
        {
            sidecar.HttpGuest = await HttpGuest.StartAsync();
        }

        sidecar.Server = await TunnelServer.StartAsync(
            new TunnelServerOptions
            {
                ListenEndpoint = new IPEndPoint(IPAddress.Loopback, 0),
                WorkloadNamespace = "default",
                HttpPorts = httpPorts,
                MaxStreamsPerConnection = maxStreamsPerConnection,
                IdleTimeout = serverIdleTimeout ?? new TunnelServerOptions { WorkloadNamespace = "default" }.IdleTimeout,
                KeepAliveInterval = serverKeepAlive ?? Beemesh.Agent.Client.TunnelKeepAlive.DefaultInterval,
                KeepAliveTimeout = serverKeepAlive ?? Beemesh.Agent.Client.TunnelKeepAlive.DefaultTimeout,
                KeepAliveTimeProvider = keepAliveTime,
            },
            sidecar.Source, directory, sidecar.Policies, new PortRoutingGuestConnector(httpPorts, () => sidecar.HttpGuest!, sidecar.Guest),
            httpPorts.Count != 0 && Environment.GetEnvironmentVariable("BEEMESH_TEST_LOG") is { } log ? LoggerFactory.Create(b => b.AddProvider(new FileLoggerProvider(log)).SetMinimumLevel(LogLevel.Trace)) : null,
            serverTime);
        sidecar.Quic = quic ? new Beemesh.Sidecar.Tunnel.Quic.QuicTunnelClient(sidecar.Source, () => directory.RevokedNodes) : null;
        sidecar.Pool = new TunnelClientPool(sidecar.Source, sidecar.Server.Connections.Counters, directory.RevokedIssuerOf, sidecar.Quic, options: poolOptions);
        sidecar.Outbound = new OutboundListener(directory, sidecar.Pool);
        sidecar.Outbound.Start();
        directory.Add(sidecar.Peer);
        return sidecar;
    }

    public async ValueTask DisposeAsync()
    {
        await Outbound.DisposeAsync();
        Pool.Dispose();
        if (Quic is not null)
        {
            await Quic.DisposeAsync();
        }

        await Server.DisposeAsync();
        await Guest.DisposeAsync();
        if (HttpGuest is not null)
        {
            await HttpGuest.DisposeAsync();
        }

        await Source.DisposeAsync();
        _client.Dispose();
        await _api.DisposeAsync();
    }
}
