using System.Collections.Concurrent;
using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Tests;
using Beemesh.Sidecar.Mesh;
using Beemesh.Spiffe;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.Tests.Mesh;

/// <summary>The sidecar's views of the agent (policies, directory) while the agent is down and after it restarts.</summary>
public sealed class AgentRestartViewTests : IDisposable
{
    // Generous: a safety net against a hang, not a measured bound.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private const string Deny = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: deny-evil
          namespace: default
        spec:
          action: DENY
          rules:
          - from:
            - source:
                principals: ["example.org/ns/default/sa/evil"]
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("bm-rv-").FullName;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string StateDirectory => Path.Combine(_root, "s");

    private Task<AgentHost> StartAgentAsync() => AgentHost.StartAsync(new AgentOptions { StateDirectory = StateDirectory });

    [Fact]
    public async Task The_last_policies_stay_in_force_while_the_agent_is_down_and_a_restarted_agent_is_followed()
    {
        var logger = new ListLogger(Pulse);
        AgentHost first = await StartAgentAsync();
        using var client = new AgentClient(StateDirectory);
        await client.ApplyPoliciesAsync(Deny);
        using var source = new AgentPolicySource(client, logger);
        source.Changed += (_, _) => Pulse();
        await source.LoadAsync(CancellationToken.None);
        string? firstEpoch = source.Epoch;
        Assert.Equal("deny-evil", Assert.Single(source.Current).Name);

        await first.DisposeAsync();
        // The flag and the log line are set one after the other: wait for both.
        await Until(() => source.AgentUnreachable && logger.Lines.Any(l => l.Contains("agent unreachable", StringComparison.Ordinal)));
        Assert.Equal("deny-evil", Assert.Single(source.Current).Name);
        Assert.Single(logger.Lines, l => l.Contains("agent unreachable", StringComparison.Ordinal) && l.Contains("enforcing last policies", StringComparison.Ordinal));

        await using AgentHost second = await StartAgentAsync();
        await Until(() => !source.AgentUnreachable && source.Epoch != firstEpoch && logger.Lines.Any(l => l.Contains("agent is back", StringComparison.Ordinal)));
        Assert.Equal("deny-evil", Assert.Single(source.Current).Name);
        Assert.Equal(1, source.Version);
        Assert.Single(logger.Lines, l => l.Contains("agent is back", StringComparison.Ordinal));

        // A change on the restarted agent reaches the view.
        Assert.True(await client.DeletePolicyAsync("default", "deny-evil"));
        await Until(() => source.Current.Count == 0);
        Assert.Equal(2, source.Version);
    }

    [Fact]
    public async Task The_directory_follows_the_watch_keeps_its_view_while_the_agent_is_down_and_never_waits_on_a_miss()
    {
        AgentHost first = await StartAgentAsync();
        using var client = new AgentClient(StateDirectory);
        using var directory = new AgentMeshDirectory(client, IPNetwork.Parse("10.200.0.0/16"));
        directory.Changed += (_, _) => Pulse();
        await directory.LoadAsync(CancellationToken.None);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        directory.Changed += (_, _) => changed.TrySetResult();

        WorkloadRecord api = await client.RegisterWorkloadAsync(AgentFixture.Workload("api"));
        await changed.Task.WaitAsync(Patience);
        Assert.Equal(IPAddress.Parse(api.MeshAddress), directory.ResolveName("api.default.svc.cluster.local"));
        Assert.True(directory.ContainsWorkload(api.Id));

        await first.DisposeAsync();

        // The agent is gone: known peers still resolve, unknown ones answer null (identities after IdentityWait).
        Assert.Equal(IPAddress.Parse(api.MeshAddress), directory.ResolveName("api.default"));
        Assert.NotNull(directory.ResolveIdentity(SpiffeId.Parse(api.SpiffeId)));
        Assert.Null(directory.ResolveName("nobody.default"));
        Assert.Null(directory.ResolveAddress(IPAddress.Parse("10.200.9.9")));
        Assert.Null(await directory.ResolveIdentityAsync(SpiffeId.Parse("spiffe://example.org/ns/default/sa/nobody")));

        // Restarted on the same state: the registration of this (live) process is restored.
        await using AgentHost second = await StartAgentAsync();
        WorkloadRecord web = await client.RegisterWorkloadAsync(AgentFixture.Workload("web"));
        await Until(() => directory.ContainsWorkload(web.Id));
        Assert.True(directory.ContainsWorkload(api.Id));
        Assert.Equal(IPAddress.Parse(api.MeshAddress), directory.ResolveName("api.default"));
    }

    // Checked again at each change the view signals (a new set installed) and each line it logs, never on a
    // timer; the patience only keeps a broken build from hanging.
    private async Task Until(Func<bool> condition)
    {
        using var patience = new CancellationTokenSource(Patience);
        while (true)
        {
            Task changed = Volatile.Read(ref _changed).Task; // taken before the check, so no change in between is missed
            if (condition())
            {
                return;
            }

            await changed.WaitAsync(patience.Token);
        }
    }

    private void Pulse() => Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Keeps every line logged and calls <paramref name="written"/> after each.</summary>
    private sealed class ListLogger(Action written) : ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => [.. _lines];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            _lines.Enqueue(formatter(state, exception));
            written();
        }
    }
}
