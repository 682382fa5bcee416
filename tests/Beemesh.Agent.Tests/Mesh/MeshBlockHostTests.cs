using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Mesh;
using Beemesh.Identity.Join;
using Beemesh.Overlay.Records;

namespace Beemesh.Agent.Tests.Mesh;

/// <summary>Agents of one mesh in this process: each claims a block of the mesh CIDR, collisions move the higher node id, routes stay in their node's block.</summary>
public sealed class MeshBlockHostTests : IDisposable
{
    private const string TrustDomain = "mesh.test";
    private static readonly MeshBlockPlan Plan = new("10.200.0.0/16", 24);
    private readonly string _root = Directory.CreateTempSubdirectory("bm-mb-").FullName;

    [Fact]
    public async Task ANodeClaimsTheBlockItsIdSelectsAndKeepsItAcrossARestart()
    {
        IPNetwork expected = Plan.Block(Plan.StartIndex(NodeIds.Of(TrustDomain, "a")));
        await using (AgentHost first = await Start("a", join: null, token: null))
        {
            Assert.Equal(expected, first.Workloads.AddressRange);
            Assert.Equal(expected, StoredBlock("a"));
            WorkloadRecord web = first.Workloads.Add(AgentFixture.Workload("web"))!;
            Assert.True(expected.Contains(IPAddress.Parse(web.MeshAddress)));
            using var client = new AgentClient(first.Options.StateDirectory);
            Assert.Equal(expected.ToString(), Assert.Single((await client.GetMembersAsync()).Nodes).MeshBlock);
        }

        // A block stored earlier wins over the hash (it may have moved there after a collision).
        IPNetwork moved = Plan.Block((Plan.StartIndex(NodeIds.Of(TrustDomain, "a")) + 9) % Plan.Count);
        SeedBlock("a", moved);
        await using AgentHost again = await Start("a", join: null, token: null);
        Assert.Equal(moved, again.Workloads.AddressRange);
        Assert.True(moved.Contains(IPAddress.Parse(Assert.Single(again.Workloads.List()).MeshAddress)));
    }

    [Fact]
    public async Task TwoNodesClaimingOneBlockTheHigherIdMovesAndReaddressesItsWorkloads()
    {
        IPNetwork contested = Plan.Block(7);
        // The first node gets the higher id, so its workload is addressed in the contested block
        // before the second node (the lower id, which keeps the block) shows up.
        string lowerName = new[] { "b", "c", "d", "e", "f", "g", "h" }.First(n => NodeIds.Of(TrustDomain, n) < NodeIds.Of(TrustDomain, "a"));
        const string higherName = "a";
        SeedBlock(higherName, contested);
        SeedBlock(lowerName, contested);
        await using AgentHost higher = await Start(higherName, join: null, token: null);
        WorkloadRecord movedWorkload = higher.Workloads.Add(AgentFixture.Workload("moved"))!;
        Assert.Equal("10.200.7.1", movedWorkload.MeshAddress);
        await using AgentHost lower = await Start(lowerName, [higher.NodeEndPoint!], CreateToken(higher));
        WorkloadRecord kept = lower.Workloads.Add(AgentFixture.Workload("kept"))!;
        Assert.Equal("10.200.7.1", kept.MeshAddress);

        // The higher id moves: its workload leaves the contested block, its new block is stored and advertised.
        await ChangeWait.UntilAsync(higher.Workloads, () => !contested.Contains(IPAddress.Parse(Local(higher, "moved").MeshAddress)));
        IPNetwork newBlock = higher.Workloads.AddressRange!.Value;
        Assert.NotEqual(contested, newBlock);
        Assert.True(newBlock.Contains(IPAddress.Parse(Local(higher, "moved").MeshAddress)));
        Assert.Equal(newBlock, StoredBlock(higherName));
        Assert.Equal(1, higher.Overlay!.Counters.GetValueOrDefault("mesh_block_moves"));

        // The lower id keeps the block and its workload's address.
        Assert.Equal(contested, lower.Workloads.AddressRange);
        Assert.Equal(contested, StoredBlock(lowerName));
        Assert.Equal("10.200.7.1", Local(lower, "kept").MeshAddress);
        Assert.Equal(0, lower.Overlay!.Counters.GetValueOrDefault("mesh_block_moves"));

        // Each node routes to the other's workload at its address in the other's block; the contested
        // address leads to the lower node's workload everywhere.
        await ChangeWait.UntilAsync(lower.Workloads, () => lower.Workloads.RemoteRoutes().Any(r => r.Name == "moved" && newBlock.Contains(IPAddress.Parse(r.MeshAddress))));
        await ChangeWait.UntilAsync(higher.Workloads, () => higher.Workloads.RemoteRoutes().Any(r => r.Name == "kept"));
        Assert.Equal(lowerName, higher.Workloads.ResolveAddress(IPAddress.Parse("10.200.7.1"))!.Node);
        Assert.Equal("kept", higher.Workloads.ResolveAddress(IPAddress.Parse("10.200.7.1"))!.Name);
        Assert.DoesNotContain(lower.Workloads.RemoteRoutes(), r => contested.Contains(IPAddress.Parse(r.MeshAddress)));

        using var client = new AgentClient(lower.Options.StateDirectory);
        MembersReport members = await client.GetMembersAsync();
        Assert.Equal(contested.ToString(), members.Nodes.Single(n => n.Name == lowerName).MeshBlock);
        Assert.Equal(newBlock.ToString(), members.Nodes.Single(n => n.Name == higherName).MeshBlock);
    }

    [Fact]
    public async Task ARouteOutsideTheBlockItsNodeHoldsIsRefusedAndCounted()
    {
        await using AgentHost a = await Start("a", join: null, token: null);
        await using AgentHost b = await Start("b", [a.NodeEndPoint!], CreateToken(a));
        b.Workloads.Add(AgentFixture.Workload("first"));
        await ChangeWait.UntilAsync(a.Workloads, () => a.Workloads.RemoteRoutes().Any(r => r.Name == "first"));
        IPNetwork aBlock = a.Workloads.AddressRange!.Value;
        IPNetwork bBlock = b.Workloads.AddressRange!.Value;
        Assert.NotEqual(aBlock, bBlock);
        WorkloadRecord aWeb = a.Workloads.Add(AgentFixture.Workload("web"))!;

        // b signs routes to a's address and to one outside the mesh CIDR: valid signatures, refused all the same.
        string hijacked = aWeb.MeshAddress;
        await b.Overlay!.PublishAsync(ForgedRoute("b", "w900", "evil", hijacked));
        await b.Overlay.PublishAsync(ForgedRoute("b", "w901", "stray", "10.201.0.1"));
        b.Workloads.Add(AgentFixture.Workload("second"));
        await ChangeWait.UntilAsync(a.Workloads, () => a.Workloads.RemoteRoutes().Any(r => r.Name == "second"));

        Assert.DoesNotContain(a.Workloads.RemoteRoutes(), r => r.Name is "evil" or "stray");
        Assert.All(a.Workloads.RemoteRoutes(), r => Assert.True(bBlock.Contains(IPAddress.Parse(r.MeshAddress))));
        Assert.Equal("web", a.Workloads.ResolveAddress(IPAddress.Parse(hijacked))!.Name);
        Assert.Null(a.Workloads.Resolve("evil.default"));
        Assert.Equal(2, a.Overlay!.Counters.GetValueOrDefault("routes_outside_block_refused"));
        using var client = new AgentClient(a.Options.StateDirectory);
        Assert.Contains("beemesh_overlay_routes_outside_block_refused_total 2\n", await client.GetMetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithEveryBlockClaimedTheHigherIdHoldsNoneAndRefusesRegistrations()
    {
        // One block only (a /24 mesh CIDR in /24 blocks); the first node gets the higher id.
        string lowerName = new[] { "b", "c", "d", "e", "f", "g", "h" }.First(n => NodeIds.Of(TrustDomain, n) < NodeIds.Of(TrustDomain, "a"));
        await using AgentHost higher = await Start("a", join: null, token: null, meshCidr: "10.200.0.0/24");
        WorkloadRecord web = higher.Workloads.Add(AgentFixture.Workload("web"))!;
        Assert.Equal("10.200.0.1", web.MeshAddress);
        await using AgentHost lower = await Start(lowerName, [higher.NodeEndPoint!], CreateToken(higher), meshCidr: "10.200.0.0/24");
        Assert.Equal("10.200.0.1", lower.Workloads.Add(AgentFixture.Workload("api"))!.MeshAddress);

        await ChangeWait.UntilAsync(higher.Workloads, () => higher.Workloads.AddressRange is null);
        Assert.Equal("", Local(higher, "web").MeshAddress);
        // The block's address leads to the lower node's workload, on the node without a block too.
        Assert.Equal(lowerName, (await WaitRouteAsync(higher, "api")).Node);
        Assert.Equal("api", higher.Workloads.ResolveAddress(IPAddress.Parse("10.200.0.1"))!.Name);
        using var client = new AgentClient(higher.Options.StateDirectory);
        AgentApiException refused = await Assert.ThrowsAsync<AgentApiException>(() => client.RegisterWorkloadAsync(AgentFixture.Workload("db")));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("holds no mesh address block", refused.Message, StringComparison.Ordinal);
        Assert.Equal(IPNetwork.Parse("10.200.0.0/24"), lower.Workloads.AddressRange);
        Assert.DoesNotContain(lower.Workloads.RemoteRoutes(), r => r.Name == "web");
    }

    private static async Task<WorkloadRecord> WaitRouteAsync(AgentHost host, string name)
    {
        await ChangeWait.UntilAsync(host.Workloads, () => host.Workloads.RemoteRoutes().Any(r => r.Name == name));
        return host.Workloads.RemoteRoutes().Single(r => r.Name == name);
    }

    private static RecordContent ForgedRoute(string node, string id, string name, string address) => new(
        RecordKind.Route,
        $"{node}/{id}",
        JsonSerializer.SerializeToUtf8Bytes(
            new WorkloadRecord { Id = id, Name = name, Namespace = "default", SpiffeId = $"spiffe://{TrustDomain}/ns/default/sa/{name}", MeshAddress = address, TunnelEndpoint = "127.0.0.1:1", Node = node },
            AgentJsonContext.Default.WorkloadRecord),
        Leased: true);

    private static WorkloadRecord Local(AgentHost host, string name) => host.Workloads.List().Single(w => w.Name == name);

    private void SeedBlock(string node, IPNetwork block)
    {
        string dir = Path.Combine(_root, node, "state");
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(dir, AgentHost.MeshBlockFileName), $$"""{"format": 1, "block": "{{block}}"}""");
    }

    private IPNetwork StoredBlock(string node) =>
        IPNetwork.Parse(JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, node, "state", AgentHost.MeshBlockFileName))).RootElement.GetProperty("block").GetString()!);

    private Task<AgentHost> Start(string name, EndPoint[]? join, string? token, string meshCidr = "10.200.0.0/16") =>
        MeshNodes.StartAsync(_root, name, join, token, o => o.MeshCidr = meshCidr);

    private static string CreateToken(AgentHost first) => MeshNodes.CreateToken(first).ToString();

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
