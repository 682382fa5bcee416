using Beemesh.Agent.Client;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;
using Grpc.Core;

namespace Beemesh.Agent.Tests.Hosting;

public sealed class WorkloadIdentityTests
{
    [SkippableFact]
    public async Task RegisteredProcessGetsItsSvidAndLosesItOnDelete()
    {
        Skip.IfNot(WorkloadRelay.Available, "python3 is not installed (/usr/bin/python3)");
        await using var agent = await AgentFixture.StartAsync();
        using var relay = await WorkloadRelay.StartAsync(agent.Host.WorkloadApiSocketPath, Path.Combine(agent.Root, "relay.sock"));
        using var workloadApi = new WorkloadApiClient(relay.SocketPath);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        var before = await Assert.ThrowsAsync<RpcException>(() => workloadApi.FetchX509ContextAsync(cancel.Token));
        Assert.Equal(StatusCode.PermissionDenied, before.StatusCode);

        WorkloadRecord web = await agent.Client.RegisterWorkloadAsync(AgentFixture.Workload("web", "shop", relay.ProcessId), cancel.Token);
        X509Context context = await workloadApi.FetchX509ContextAsync(cancel.Token);
        X509Svid svid = Assert.Single(context.Svids);
        Assert.Equal(web.SpiffeId, svid.Id.ToString());
        Assert.True(context.Bundles.ContainsKey("example.org") || context.Bundles.ContainsKey("spiffe://example.org"));

        Assert.True(await agent.Client.UnregisterWorkloadAsync(web.Id, cancel.Token));
        var after = await Assert.ThrowsAsync<RpcException>(() => workloadApi.FetchX509ContextAsync(cancel.Token));
        Assert.Equal(StatusCode.PermissionDenied, after.StatusCode);
    }
}
