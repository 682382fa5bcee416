using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tests;
using Beemesh.Sidecar.Mesh;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Tests.Mesh;

public sealed class AgentMeshDirectoryTests
{
    [Fact]
    public async Task A_caller_that_registered_a_moment_ago_is_resolved_on_its_first_call()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16"));

        // Back to back, well inside any rate limit: each new caller must be found at once.
        for (int i = 0; i < 20; i++)
        {
            WorkloadRecord record = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload($"caller{i}"));
            MeshPeer? peer = await directory.ResolveIdentityAsync(SpiffeId.Parse(record.SpiffeId));
            Assert.NotNull(peer);
            Assert.Equal(IPAddress.Parse(record.MeshAddress), peer.MeshAddress);
        }
    }

    [Fact]
    public async Task Service_ports_are_those_every_workload_of_the_name_declares()
    {
        await using var agent = await AgentFixture.StartAsync();
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "prod")); // 8080/http
        WorkloadRegistration second = AgentFixture.Workload("api", "prod");
        second.Ports = [new WorkloadPort { Port = 9090 }, new WorkloadPort { Port = 8080, Protocol = "http" }];
        await agent.Client.RegisterWorkloadAsync(second);
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "prod"));
        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16"));
        await directory.LoadAsync(CancellationToken.None);

        Assert.Equal([8080, 9090], directory.ServicePorts("api.prod"));
        Assert.Equal([8080, 9090], directory.ServicePorts("API.Prod"));
        Assert.Equal([8080], directory.ServicePorts("web.prod"));
        Assert.Null(directory.ServicePorts("api.default"));
    }

    [Fact]
    public async Task Concurrent_misses_all_see_the_new_callers()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16"));
        var records = new List<WorkloadRecord>();
        for (int i = 0; i < 8; i++)
        {
            records.Add(await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload($"burst{i}")));
        }

        MeshPeer?[] peers = await Task.WhenAll(records.Select(r => Task.Run(async () => await directory.ResolveIdentityAsync(SpiffeId.Parse(r.SpiffeId)))));
        Assert.All(peers, p => Assert.NotNull(p));
    }

    [Fact]
    public async Task A_caller_whose_route_arrives_after_its_first_call_is_held_until_it_arrives()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16")) { IdentityWait = TimeSpan.Zero };
        await directory.LoadAsync(CancellationToken.None);
        directory.Start();
        // With no wait a caller the list does not name is refused at once (after the miss's refresh).
        var late = SpiffeId.Parse("spiffe://example.org/ns/default/sa/late");
        Assert.Null(await directory.ResolveIdentityAsync(late));

        // With a wait, the call is held until the caller's route arrives (here: it registers), then resolved.
        directory.IdentityWait = TimeSpan.FromMinutes(2);
        Task<MeshPeer?> pending = directory.ResolveIdentityAsync(late).AsTask();
        WorkloadRecord record = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("late"));
        MeshPeer? peer = await pending.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.NotNull(peer);
        Assert.Equal(IPAddress.Parse(record.MeshAddress), peer.MeshAddress);
    }

    [Fact]
    public async Task An_identity_that_never_registered_stays_unknown()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16"));
        Assert.Null(await directory.ResolveIdentityAsync(SpiffeId.Parse("spiffe://example.org/ns/default/sa/nobody")));
        Assert.Null(directory.ResolveIdentity(SpiffeId.Parse("spiffe://example.org/ns/default/sa/nobody")));
    }

    [Fact]
    public async Task Connections_to_a_name_are_spread_over_its_replicas_and_a_departed_one_gets_none()
    {
        await using var agent = await AgentFixture.StartAsync();
        var ids = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            WorkloadRegistration replica = AgentFixture.Workload("api", "prod");
            replica.TunnelEndpoint = $"127.0.0.1:{15201 + i}";
            ids.Add((await agent.Client.RegisterWorkloadAsync(replica)).Id);
        }

        using var directory = new AgentMeshDirectory(agent.Client, IPNetwork.Parse("10.200.0.0/16"), null, new Random(11));
        await directory.LoadAsync(CancellationToken.None);
        IPAddress address = directory.ResolveName("api.prod.svc.cluster.local")!;
        Assert.NotNull(address);
        int[] Spread(int calls)
        {
            var counts = new int[3];
            for (int i = 0; i < calls; i++)
            {
                counts[directory.PickReplica(address)!.TunnelEndpoint.Port - 15201]++;
            }

            return counts;
        }

        Assert.Equal([10, 10, 10], Spread(30));
        Assert.Equal(15201, directory.ResolveAddress(address)!.TunnelEndpoint.Port);

        // The second replica departs: once the list in place no longer names it, it gets no new connection.
        long version = directory.Version;
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        directory.Changed += (_, _) =>
        {
            if (directory.Version > version)
            {
                changed.TrySetResult();
            }
        };
        Assert.True(await agent.Client.UnregisterWorkloadAsync(ids[1]));
        await changed.Task.WaitAsync(TimeSpan.FromMinutes(1));
        int[] after = Spread(20);
        Assert.Equal(0, after[1]);
        Assert.Equal(10, after[0]);
        Assert.Equal(10, after[2]);
        Assert.Equal(address, directory.ResolveName("api.prod"));
        Assert.NotNull(directory.PickServiceReplica("api.prod.svc.cluster.local"));
        Assert.Null(directory.PickServiceReplica("nothing.prod"));
    }
}
