using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>
/// Route records between two agents of this process on a clock that never moves: every timer of the
/// route sync (and of the overlay) runs on that clock, so a route that waited for one would never
/// arrive. A registration on one node must be published and applied on the other by the changes alone.
/// </summary>
public sealed class RouteSyncTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-rs-").FullName;

    [Fact]
    public async Task ARouteIsPublishedAndAppliedOnTheOtherNodeWithoutWaitingForATimer()
    {
        var frozen = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using AgentHost a = await MeshNodes.StartAsync(_root, "a", join: null, token: null, o => o.TimeProvider = frozen);
        await using AgentHost b = await MeshNodes.StartAsync(_root, "b", [a.NodeEndPoint!], MeshNodes.CreateToken(a).ToString(), o => o.TimeProvider = frozen);

        WorkloadRecord api = b.Workloads.Add(AgentFixture.Workload("api"))!;
        await ChangeWait.UntilAsync(a.Workloads, () => a.Workloads.RemoteRoutes().Any(r => r.Name == "api"));
        WorkloadRecord route = a.Workloads.RemoteRoutes().Single(r => r.Name == "api");
        Assert.Equal("b", route.Node);
        Assert.Equal(api.MeshAddress, route.MeshAddress);
        Assert.Equal("api", a.Workloads.Resolve("api.default")?.Name);

        // A second one after the first settled, and a removal: each goes on its own change too.
        b.Workloads.Add(AgentFixture.Workload("db"));
        await ChangeWait.UntilAsync(a.Workloads, () => a.Workloads.RemoteRoutes().Any(r => r.Name == "db"));
        b.Workloads.Remove(api.Id);
        await ChangeWait.UntilAsync(a.Workloads, () => a.Workloads.RemoteRoutes().All(r => r.Name != "api"));
        Assert.Null(a.Workloads.Resolve("api.default"));
        Assert.Equal("db", Assert.Single(a.Workloads.RemoteRoutes()).Name);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
