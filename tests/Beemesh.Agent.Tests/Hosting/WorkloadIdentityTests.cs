using Beemesh.Agent.Client;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Grpc.Core;

namespace Beemesh.Agent.Tests.Hosting;

public sealed class WorkloadIdentityTests
{
    [Fact]
    public async Task RegisteredProcessGetsItsSvidAndLosesItOnDelete()
    {
        await using var agent = await AgentFixture.StartAsync();
        using var workloadApi = new WorkloadApiClient(agent.Host.WorkloadApiSocketPath);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        var before = await Assert.ThrowsAsync<RpcException>(() => workloadApi.FetchX509ContextAsync(cancel.Token));
        Assert.Equal(StatusCode.PermissionDenied, before.StatusCode);

        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop"), cancel.Token);
        X509Context context = await workloadApi.FetchX509ContextAsync(cancel.Token);
        X509Svid svid = Assert.Single(context.Svids);
        Assert.Equal(web.SpiffeId, svid.Id.ToString());
        Assert.True(context.Bundles.ContainsKey("example.org") || context.Bundles.ContainsKey("spiffe://example.org"));

        Assert.True(await agent.Client.UnregisterWorkloadAsync(web.Id, cancel.Token));
        var after = await Assert.ThrowsAsync<RpcException>(() => workloadApi.FetchX509ContextAsync(cancel.Token));
        Assert.Equal(StatusCode.PermissionDenied, after.StatusCode);
    }
}
