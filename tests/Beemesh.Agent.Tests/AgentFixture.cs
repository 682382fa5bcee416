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

    public static async Task<AgentFixture> StartAsync(string meshCidr = "10.200.0.0/16", bool fakeTime = false, Action<AgentOptions>? configure = null)
    {
        string root = Directory.CreateTempSubdirectory("bm-ag-").FullName;
        FakeTimeProvider? time = fakeTime ? new FakeTimeProvider(DateTimeOffset.UtcNow) : null;
        var options = new AgentOptions { StateDirectory = Path.Combine(root, "state"), MeshCidr = meshCidr };
        if (time is not null)
        {
            options.TimeProvider = time;
        }

        configure?.Invoke(options);
        AgentHost host = await AgentHost.StartAsync(options);
        return new AgentFixture(root, host) { Time = time };
    }

    /// <summary>
    /// A registration for <paramref name="pid"/>, or by default for a fresh child process of this test
    /// (a workload is registered by its parent; the agent refuses its own pid and a second name per process).
    /// </summary>
    public static WorkloadRegistration Workload(string name, string ns = "default", int? pid = null) => new()
    {
        Name = name,
        Namespace = ns,
        Pid = pid ?? StartChild().Id,
        Ports = [new WorkloadPort { Port = 8080, Protocol = "http" }],
        TunnelEndpoint = "127.0.0.1:15008",
    };

    private static readonly System.Collections.Concurrent.ConcurrentBag<System.Diagnostics.Process> Children = [];

    /// <summary>Starts a child process that sleeps until the test run ends (killed at exit).</summary>
    public static System.Diagnostics.Process StartChild(string command = "sleep", params string[] arguments)
    {
        var info = new System.Diagnostics.ProcessStartInfo(command) { UseShellExecute = false };
        foreach (string argument in arguments.Length == 0 && command == "sleep" ? ["600"] : arguments)
        {
            info.ArgumentList.Add(argument);
        }

        System.Diagnostics.Process child = System.Diagnostics.Process.Start(info)!;
        if (Children.IsEmpty)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => KillChildren();
        }

        Children.Add(child);
        return child;
    }

    private static void KillChildren()
    {
        foreach (System.Diagnostics.Process child in Children)
        {
            try
            {
                child.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

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
