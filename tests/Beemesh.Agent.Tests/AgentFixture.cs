using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests;

/// <summary>An agent in a private temp dir (short path: unix socket names must fit 108 bytes) and a client for it.</summary>
internal sealed class AgentFixture : IAsyncDisposable
{
    private AgentFixture(string root, AgentHost host)
    {
        Root = root;
        Host = host;
        Client = new AgentClient(host.Options.StateDirectory);
    }

    public string Root { get; }

    public AgentHost Host { get; }

    public AgentClient Client { get; }

    public FakeTimeProvider? Time { get; private init; }

    public static async Task<AgentFixture> StartAsync(string meshCidr = "10.200.0.0/16", bool fakeTime = false)
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        FakeTimeProvider? time = fakeTime ? new FakeTimeProvider(DateTimeOffset.UtcNow) : null;
        var options = new AgentOptions { StateDirectory = Path.Combine(root, "state"), MeshCidr = meshCidr };
        if (time is not null)
        {
            options.TimeProvider = time;
        }

        AgentHost host = await AgentHost.StartAsync(options);
        return new AgentFixture(root, host) { Time = time };
    }

    public static WorkloadRegistration Workload(string name, string ns = "default", int? pid = null) => new()
    {
        Name = name,
        Namespace = ns,
        Pid = pid ?? Environment.ProcessId,
        Ports = [new WorkloadPort { Port = 8080, Protocol = "http" }],
        TunnelEndpoint = "127.0.0.1:15008",
    };

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
