using System.Net;
using Beemesh.Agent.Client;

namespace Beemesh.Agent.Tests.Workloads;

public sealed class WorkloadApiTests
{
    [Fact]
    public async Task RegisterResolveListDelete()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord api = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "shop"));
        Assert.Equal("spiffe://example.org/ns/shop/sa/api", api.SpiffeId);
        Assert.Equal("10.200.0.1", api.MeshAddress);
        Assert.Equal("127.0.0.1:15008", api.TunnelEndpoint);

        ServiceRecord? byName = await agent.Client.ResolveAsync("api.shop.svc.cluster.local");
        Assert.Equal(("api", "shop", api.SpiffeId, api.MeshAddress), (byName!.Name, byName.Namespace, byName.SpiffeId, byName.MeshAddress));
        WorkloadRecord replica = Assert.Single(byName.Replicas);
        Assert.Equal(api.Id, replica.Id);
        Assert.Equal(8080, Assert.Single(replica.Ports).Port);
        Assert.Equal("http", replica.Ports[0].Protocol);
        Assert.Equal(api.Id, Assert.Single((await agent.Client.ResolveAsync("API.shop."))!.Replicas).Id);
        Assert.Null(await agent.Client.ResolveAsync("api.other"));
        Assert.Equal(api.Id, (await agent.Client.ResolveAddressAsync(IPAddress.Parse("10.200.0.1")))!.Id);
        Assert.Null(await agent.Client.ResolveAddressAsync(IPAddress.Parse("10.200.0.9")));

        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web"));
        Assert.Equal("10.200.0.2", web.MeshAddress);
        Assert.Equal(["web", "api"], (await agent.Client.ListWorkloadsAsync()).Select(w => w.Name));

        Assert.True(await agent.Client.UnregisterWorkloadAsync(api.Id));
        Assert.False(await agent.Client.UnregisterWorkloadAsync(api.Id));
        Assert.Null(await agent.Client.ResolveAsync("api.shop"));
        Assert.Equal(web.Id, Assert.Single(await agent.Client.ListWorkloadsAsync()).Id);
    }

    [Fact]
    public async Task MeshAddressIsStablePerNameAndNamespace()
    {
        await using var agent = await AgentFixture.StartAsync();
        WorkloadRecord first = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api"));
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api", "other"));
        Assert.True(await agent.Client.UnregisterWorkloadAsync(first.Id));
        WorkloadRecord again = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("api"));
        Assert.NotEqual(first.Id, again.Id);
        Assert.Equal(first.MeshAddress, again.MeshAddress);
    }

    [Fact]
    public async Task ExhaustedRangeIsRefusedAndTheAgentKeepsServing()
    {
        await using var agent = await AgentFixture.StartAsync("10.201.0.0/30");
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("a"));
        await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("b"));
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("c")));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("no free address", refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await agent.Client.ListWorkloadsAsync()).Count);
    }

    [Theory]
    [InlineData("Bad_Name", "default", 0, "127.0.0.1:1", "name")]
    [InlineData("ok", "default", -5, "127.0.0.1:1", "pid")] // 0 is the caller itself; a negative pid is nobody
    [InlineData("ok", "default", -1, "nowhere", "tunnelEndpoint")]
    [InlineData("ok", "UPPER", 1, "127.0.0.1:1", "namespace")]
    public async Task InvalidRegistrationsAreRefused(string name, string ns, int pidOffset, string tunnel, string field)
    {
        await using var agent = await AgentFixture.StartAsync();
        var registration = AgentFixture.Workload(name, ns, pidOffset < -1 ? pidOffset : pidOffset == 0 ? 0 : Environment.ProcessId);
        registration.TunnelEndpoint = tunnel;
        var refused = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(registration));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains(field, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadPortProtocolAndDeadPidAreRefused()
    {
        await using var agent = await AgentFixture.StartAsync();
        var udp = AgentFixture.Workload("a");
        udp.Ports = [new WorkloadPort { Port = 53, Protocol = "udp" }];
        var e1 = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(udp));
        Assert.Contains("protocol", e1.Message, StringComparison.Ordinal);

        var dead = AgentFixture.Workload("a", pid: int.MaxValue - 1);
        var e2 = await Assert.ThrowsAsync<AgentApiException>(() => agent.Client.RegisterWorkloadAsync(dead));
        Assert.Contains("does not exist", e2.Message, StringComparison.Ordinal);
        Assert.Empty(await agent.Client.ListWorkloadsAsync());
    }
}
