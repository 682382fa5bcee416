using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Agent.Workloads;

namespace Beemesh.Agent.Tests.Workloads;

/// <summary>A registry handing out addresses of this node's block, and moving its workloads when the block moves.</summary>
public sealed class WorkloadRegistryBlockTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bm-wb-").FullName;

    private string StateFile => Path.Combine(_root, "workloads.json");

    private WorkloadRegistry Open(string range) => new("mesh.test", range, TimeProvider.System, "/proc", StateFile);

    [Fact]
    public void MovingTheBlockReaddressesEveryWorkloadIntoItStoresItAndWakesWatchers()
    {
        WorkloadRegistry registry = Open("10.200.7.0/24");
        WorkloadRecord web = registry.Add(AgentFixture.Workload("web"))!;
        WorkloadRecord api = registry.Add(AgentFixture.Workload("api"))!;
        WorkloadRecord web2 = registry.Add(AgentFixture.Workload("web"))!; // same name, same address
        Assert.Equal(("10.200.7.1", "10.200.7.2", "10.200.7.1"), (web.MeshAddress, api.MeshAddress, web2.MeshAddress));
        WorkloadSet before = registry.Snapshot();

        Assert.Equal(3, registry.SetAddressRange(IPNetwork.Parse("10.200.9.0/24")));
        Assert.Equal(IPNetwork.Parse("10.200.9.0/24"), registry.AddressRange);
        WorkloadSet after = registry.Snapshot();
        Assert.True(after.Version > before.Version);
        Dictionary<string, string> byId = after.Workloads.ToDictionary(w => w.Id, w => w.MeshAddress);
        Assert.Equal(("10.200.9.1", "10.200.9.2", "10.200.9.1"), (byId[web.Id], byId[api.Id], byId[web2.Id]));
        // The snapshot taken before still says what it said.
        Assert.Equal("10.200.7.1", before.Workloads.Single(w => w.Id == web.Id).MeshAddress);
        // The old addresses lead nowhere; the new ones to their workloads.
        Assert.Null(registry.ResolveAddress(IPAddress.Parse("10.200.7.1")));
        Assert.Equal(api.Id, registry.ResolveAddress(IPAddress.Parse("10.200.9.2"))!.Id);
        Assert.Equal("10.200.9.3", registry.Add(AgentFixture.Workload("db"))!.MeshAddress);

        // The same block again changes nothing.
        long version = registry.Version;
        Assert.Equal(0, registry.SetAddressRange(IPNetwork.Parse("10.200.9.0/24")));
        Assert.Equal(version, registry.Version);

        // A restart in the same block keeps every address.
        WorkloadRegistry reopened = Open("10.200.9.0/24");
        Assert.Equal(after.Workloads.Count + 1, reopened.Count);
        Assert.Equal("10.200.9.1", reopened.List().Single(w => w.Id == web.Id).MeshAddress);
        Assert.Equal("10.200.9.2", reopened.List().Single(w => w.Id == api.Id).MeshAddress);
    }

    [Fact]
    public void ARestartInAnotherBlockReaddressesTheRestoredWorkloads()
    {
        WorkloadRegistry registry = Open("10.200.7.0/24");
        WorkloadRecord web = registry.Add(AgentFixture.Workload("web"))!;
        Assert.Equal("10.200.7.1", web.MeshAddress);

        WorkloadRegistry moved = Open("10.200.3.0/24");
        Assert.Equal("10.200.3.1", moved.List().Single().MeshAddress);
        Assert.Null(moved.ResolveAddress(IPAddress.Parse("10.200.7.1")));
    }

    [Fact]
    public void WithoutABlockRegistrationsAreRefusedAndWorkloadsHaveNoAddress()
    {
        WorkloadRegistry registry = Open("10.200.7.0/24");
        WorkloadRecord web = registry.Add(AgentFixture.Workload("web"))!;
        Assert.Equal(1, registry.SetAddressRange(null));
        Assert.Null(registry.AddressRange);
        Assert.Equal("", registry.List().Single().MeshAddress);
        Assert.Null(registry.ResolveAddress(IPAddress.Parse("10.200.7.1")));
        Assert.Null(registry.Add(AgentFixture.Workload("api")));

        // Stored that way (an empty address), it loads; a block given later addresses it again.
        Assert.Contains("\"meshAddress\": \"\"", File.ReadAllText(StateFile), StringComparison.Ordinal);
        WorkloadRegistry reopened = Open("10.200.5.0/24");
        Assert.Equal("10.200.5.1", reopened.List().Single(w => w.Id == web.Id).MeshAddress);
        Assert.Equal(1, registry.SetAddressRange(IPNetwork.Parse("10.200.6.0/24")));
        Assert.Equal("10.200.6.1", registry.List().Single().MeshAddress);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
