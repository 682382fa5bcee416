using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Agent.Tests;
using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tests.Mesh;

/// <summary>
/// The agent's <c>/v1/resolve</c> answers a name as callers' sidecars balance it: every replica, on
/// this node and on others, in the sidecars' order, and the address their DNS answers.
/// </summary>
public sealed class ServiceResolveTests
{
    private static WorkloadRecord Route(string node, string id, int octet) => new()
    {
        Id = id,
        Name = "api",
        Namespace = "default",
        SpiffeId = "spiffe://example.org/ns/default/sa/api",
        MeshAddress = $"10.200.{octet}.1",
        TunnelEndpoint = $"192.0.2.{octet}:15008",
        Node = node,
        ServerName = TunnelServerName.For("api", "default", "example.org", id),
    };

    private static WorkloadRegistration Replica(int tunnelPort)
    {
        WorkloadRegistration registration = AgentFixture.Workload("api");
        registration.TunnelEndpoint = $"127.0.0.1:{tunnelPort}";
        return registration;
    }

    [Fact]
    public async Task Resolve_answers_every_replica_in_the_sidecars_order_and_the_address_their_dns_answers()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord first = await agent.Client.RegisterWorkloadAsync(Replica(15101));
        WorkloadRecord second = await agent.Client.RegisterWorkloadAsync(Replica(15102));
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web"));
        // Other nodes' replicas, given in an order that is not the sidecars'.
        agent.Host.Workloads.SetRemoteRoutes([Route("n2", "w1", 66), Route("n1", "w4", 65), Route("n1", "w3", 65)]);

        ServiceRecord service = (await agent.Client.ResolveAsync("api.default"))!;
        Assert.Equal(
            [(null, first.Id), (null, second.Id), ("n1", "w3"), ("n1", "w4"), ("n2", "w1")],
            service.Replicas.Select(r => (r.Node, r.Id)));
        Assert.Equal(first.MeshAddress, service.MeshAddress);
        Assert.Equal(first.MeshAddress, second.MeshAddress);
        Assert.Equal("spiffe://example.org/ns/default/sa/api", service.SpiffeId);

        // The table a sidecar builds from the agent's workload list: the same replicas, in the same
        // order, and the same address for the name.
        var table = new MeshServiceTable(agent.Host.Workloads.Snapshot().Workloads);
        Assert.Equal(
            table.Replicas("api.default").Select(p => (p.NodeName, p.TunnelEndpoint.ToString(), p.MeshAddress.ToString())),
            service.Replicas.Select(r => (r.Node, r.TunnelEndpoint, r.MeshAddress)));
        Assert.Equal(table.AddressOf("api.default")!.ToString(), service.MeshAddress);

        // A replica that leaves is in no answer from then on; the name keeps its address while a replica holds it.
        Assert.True(await agent.Client.UnregisterWorkloadAsync(first.Id));
        service = (await agent.Client.ResolveAsync("api.default.svc.cluster.local."))!;
        Assert.Equal([second.Id, "w3", "w4", "w1"], service.Replicas.Select(r => r.Id));
        Assert.Equal(second.MeshAddress, service.MeshAddress);

        // Only other nodes' replicas left: the first node's by name answers.
        Assert.True(await agent.Client.UnregisterWorkloadAsync(second.Id));
        service = (await agent.Client.ResolveAsync("api.default"))!;
        Assert.Equal(["w3", "w4", "w1"], service.Replicas.Select(r => r.Id));
        Assert.Equal("10.200.65.1", service.MeshAddress);
        Assert.Equal(new MeshServiceTable(agent.Host.Workloads.Snapshot().Workloads).AddressOf("api.default")!.ToString(), service.MeshAddress);

        agent.Host.Workloads.SetRemoteRoutes([]);
        Assert.Null(await agent.Client.ResolveAsync("api.default"));
        Assert.Single((await agent.Client.ResolveAsync("web.default"))!.Replicas);
    }
}
