using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Sidecar.Mesh;

namespace Beemesh.Sidecar.Tests.Mesh;

public sealed class MeshServiceTableTests
{
    private const string Trust = "example.org";

    private static WorkloadRecord Local(string id, string name, string address, int tunnelPort) => new()
    {
        Id = id,
        Name = name,
        Namespace = "default",
        SpiffeId = $"spiffe://{Trust}/ns/default/sa/{name}",
        MeshAddress = address,
        TunnelEndpoint = $"127.0.0.1:{tunnelPort}",
        Ports = [new WorkloadPort { Port = 8080 }],
    };

    private static WorkloadRecord Remote(string node, string id, string name, string address) => new()
    {
        Id = id,
        Name = name,
        Namespace = "default",
        SpiffeId = $"spiffe://{Trust}/ns/default/sa/{name}",
        MeshAddress = address,
        TunnelEndpoint = "192.0.2.7:15008",
        Node = node,
        ServerName = TunnelServerName.For(name, "default", Trust, id),
        Ports = [new WorkloadPort { Port = 8080 }],
    };

    private static Dictionary<MeshPeer, int> Spread(ReplicaBalancer balancer, MeshServiceTable table, IPAddress address, int calls)
    {
        var counts = new Dictionary<MeshPeer, int>();
        string service = table.ServiceOf(address)!;
        for (int i = 0; i < calls; i++)
        {
            MeshPeer peer = balancer.Pick(service, table.Replicas(service))!;
            counts[peer] = counts.GetValueOrDefault(peer) + 1;
        }

        return counts;
    }

    [Fact]
    public void Every_replica_of_a_name_gets_new_connections_and_a_removed_one_gets_none()
    {
        WorkloadRecord a = Local("w1", "api", "10.200.0.2", 15101);
        WorkloadRecord b = Local("w2", "api", "10.200.0.2", 15102);
        WorkloadRecord c = Remote("node-b", "w1", "api", "10.200.64.2");
        var table = new MeshServiceTable([a, b, c, Local("w3", "web", "10.200.0.3", 15103)]);
        Assert.Equal(3, table.Replicas("api.default").Count);
        // This node's replicas first, then the other node's.
        Assert.Null(table.Replicas("api.default")[0].NodeName);
        Assert.Equal("node-b", table.Replicas("API.Default")[2].NodeName);
        Assert.Equal("w1.api.default.example.org", table.Replicas("api.default")[2].ServerName);

        var balancer = new ReplicaBalancer(new Random(42));
        // Through either node's address: the service, not one workload.
        Dictionary<MeshPeer, int> counts = Spread(balancer, table, IPAddress.Parse("10.200.64.2"), 30);
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, n => Assert.Equal(10, n));

        // b goes away: from the next choice on it gets nothing; the others share every connection.
        MeshPeer gone = table.Replicas("api.default")[1];
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 15102), gone.TunnelEndpoint);
        var next = new MeshServiceTable([a, c, Local("w3", "web", "10.200.0.3", 15103)], table);
        counts = Spread(balancer, next, IPAddress.Parse("10.200.0.2"), 20);
        Assert.DoesNotContain(gone, counts.Keys);
        Assert.Equal(2, counts.Count);
        Assert.All(counts.Values, n => Assert.Equal(10, n));

        // Another name's address leads only to it.
        Assert.Equal("web.default", next.ServiceOf(IPAddress.Parse("10.200.0.3")));
        Assert.Single(next.Replicas("web.default"));
    }

    [Fact]
    public void The_same_seed_chooses_the_same_replicas_and_a_lone_replica_is_always_chosen()
    {
        var table = new MeshServiceTable([Local("w1", "api", "10.200.0.2", 15101), Local("w2", "api", "10.200.0.2", 15102), Local("w3", "api", "10.200.0.2", 15103)]);
        IEnumerable<MeshPeer> Sequence(int seed)
        {
            var balancer = new ReplicaBalancer(new Random(seed));
            return Enumerable.Range(0, 9).Select(_ => balancer.Pick("api.default", table.Replicas("api.default"))!).ToList();
        }

        Assert.Equal(Sequence(5), Sequence(5));
        Assert.Contains(Enumerable.Range(0, 20), seed => !Sequence(seed).First().Equals(Sequence(5).First()));

        var lone = new MeshServiceTable([Local("w1", "db", "10.200.0.9", 15109)]);
        var any = new ReplicaBalancer(new Random(1));
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Same(lone.Replicas("db.default")[0], any.Pick("db.default", lone.Replicas("db.default"))));
        Assert.Null(any.Pick("none.default", lone.Replicas("none.default")));
    }

    [Fact]
    public void The_dns_answer_is_stable_and_a_cached_answer_keeps_leading_to_the_service()
    {
        WorkloadRecord local = Local("w1", "api", "10.200.0.2", 15101);
        WorkloadRecord remote = Remote("node-b", "w4", "api", "10.200.64.2");
        var first = new MeshServiceTable([remote]);
        Assert.Equal(IPAddress.Parse("10.200.64.2"), first.AddressOf("api.default"));

        // A replica on this node appears: the name keeps answering what it answered.
        var second = new MeshServiceTable([local, remote], first);
        Assert.Equal(IPAddress.Parse("10.200.64.2"), second.AddressOf("api.default"));
        Assert.Equal("api.default", second.ServiceOf(IPAddress.Parse("10.200.0.2")));

        // The other node's replicas leave: the answer moves, and the old address, which a guest may
        // still hold, leads to the replicas that remain.
        var third = new MeshServiceTable([local], second);
        Assert.Equal(IPAddress.Parse("10.200.0.2"), third.AddressOf("api.default"));
        Assert.Equal("api.default", third.ServiceOf(IPAddress.Parse("10.200.64.2")));
        Assert.Same(third.Replicas("api.default")[0], new ReplicaBalancer(new Random(3)).Pick("api.default", third.Replicas(third.ServiceOf(IPAddress.Parse("10.200.64.2"))!)));

        // A route that now holds the old address for another name takes it.
        var fourth = new MeshServiceTable([local, Remote("node-b", "w9", "cache", "10.200.64.2")], third);
        Assert.Equal("cache.default", fourth.ServiceOf(IPAddress.Parse("10.200.64.2")));
        Assert.Equal("api.default", fourth.ServiceOf(IPAddress.Parse("10.200.0.2")));

        // The name has no replica left: none of its addresses leads anywhere, and it has no answer.
        var last = new MeshServiceTable([Remote("node-b", "w9", "cache", "10.200.64.2")], fourth);
        Assert.Null(last.ServiceOf(IPAddress.Parse("10.200.0.2")));
        Assert.Null(last.AddressOf("api.default"));
        Assert.Empty(last.Replicas("api.default"));
    }

    [Fact]
    public void Records_without_a_valid_address_endpoint_or_identity_are_left_out()
    {
        WorkloadRecord badAddress = Local("w1", "api", "not-an-address", 15101);
        WorkloadRecord badEndpoint = Local("w2", "api", "10.200.0.2", 15102);
        badEndpoint.TunnelEndpoint = "nowhere";
        WorkloadRecord badIdentity = Local("w3", "api", "10.200.0.2", 15103);
        badIdentity.SpiffeId = "not a spiffe id";
        var table = new MeshServiceTable([badAddress, badEndpoint, badIdentity]);
        Assert.Empty(table.Replicas("api.default"));
        Assert.Null(table.ServiceOf(IPAddress.Parse("10.200.0.2")));
        Assert.Null(table.Ports("api.default"));
    }

    [Fact]
    public void A_replica_server_name_round_trips_and_other_labels_are_not_replicas()
    {
        string name = TunnelServerName.For("api", "prod", "Example.Org", "w12");
        Assert.Equal("w12.api.prod.example.org", name);
        Assert.True(TunnelServerName.TryParse(name, "example.org", out string n, out string ns, out string? replica));
        Assert.Equal(("api", "prod", "w12"), (n, ns, replica));
        // The name-only parse takes the name-only form alone.
        Assert.False(TunnelServerName.TryParse(name, "example.org", out _, out _));
        Assert.True(TunnelServerName.TryParse("api.prod.example.org", "example.org", out _, out _, out replica));
        Assert.Null(replica);

        // Not a workload id: the name-only form, and three labels without an id do not parse.
        Assert.Equal("api.prod.example.org", TunnelServerName.For("api", "prod", "example.org", "x.y"));
        Assert.Equal("api.prod.example.org", TunnelServerName.For("api", "prod", "example.org", null));
        Assert.False(TunnelServerName.TryParse("evil.api.prod.example.org", "example.org", out _, out _, out replica));
        Assert.Null(replica);
        Assert.False(TunnelServerName.TryParse("w.api.prod.example.org", "example.org", out _, out _, out _));
        Assert.False(TunnelServerName.IsReplicaId("w1a"));
        Assert.True(TunnelServerName.IsReplicaId("w7"));
    }
}
