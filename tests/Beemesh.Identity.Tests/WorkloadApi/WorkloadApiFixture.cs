using Beemesh.Identity.Attestation;
using Beemesh.Identity.Authority;
using Beemesh.Identity.WorkloadApi;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Identity.Tests.WorkloadApi;

/// <summary>A CA in a temp dir plus Workload API servers on unix sockets there, sharing one fake clock.</summary>
internal sealed class WorkloadApiFixture : IAsyncDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly List<WorkloadApiServer> _servers = [];
    private readonly List<WorkloadApiClient> _clients = [];

    public WorkloadApiFixture()
        : this(null)
    {
    }

    /// <summary>A fixture whose CA <paramref name="createAuthority"/> builds (from a state directory and the clock).</summary>
    public WorkloadApiFixture(Func<string, TimeProvider, CertificateAuthority>? createAuthority)
    {
        Time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        Authority = createAuthority is null
            ? CertificateAuthority.LoadOrCreate(_dir.File("state"), timeProvider: Time)
            : createAuthority(_dir.File("state"), Time);
    }

    public FakeTimeProvider Time { get; }

    public CertificateAuthority Authority { get; }

    /// <summary>The started servers, in start order.</summary>
    public IReadOnlyList<WorkloadApiServer> Servers => _servers;

    /// <summary>The attestor of each started server, in start order.</summary>
    public List<RegisteredWorkloads> Workloads { get; } = [];

    /// <summary>Starts a server that gives this test process <paramref name="selfId"/> (or nothing when null) and returns a client for it.</summary>
    public async Task<WorkloadApiClient> StartServerAsync(string? selfId, int seed = 1, Action<WorkloadApiServerOptions>? configure = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        var workloads = new RegisteredWorkloads();
        Workloads.Add(workloads);
        if (selfId is not null)
        {
            Assert.True(workloads.Register(Environment.ProcessId, SpiffeId.Parse(selfId)));
        }

        string socket = _dir.File($"api{_servers.Count}.sock");
        var options = new WorkloadApiServerOptions { SocketPath = socket };
        configure?.Invoke(options);
        WorkloadApiServer server = await WorkloadApiServer.StartAsync(options, Authority, workloads, Time, new Random(seed), loggerFactory: loggerFactory);
        _servers.Add(server);
        var client = new WorkloadApiClient(socket);
        _clients.Add(client);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (WorkloadApiClient client in _clients)
        {
            client.Dispose();
        }

        foreach (WorkloadApiServer server in _servers)
        {
            await server.DisposeAsync();
        }

        Authority.Dispose();
        _dir.Dispose();
    }
}
