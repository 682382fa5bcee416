using System.Net;
using Beemesh.Agent.Mesh;

namespace Beemesh.Agent.Tests.Mesh;

public sealed class MeshBlockPlanTests
{
    private static readonly MeshBlockPlan Default = new("10.200.0.0/16", 24);

    [Fact]
    public void CutsTheCidrIntoAlignedBlocksAndNumbersThem()
    {
        Assert.Equal(256, Default.Count);
        Assert.Equal(IPNetwork.Parse("10.200.0.0/24"), Default.Block(0));
        Assert.Equal(IPNetwork.Parse("10.200.7.0/24"), Default.Block(7));
        Assert.Equal(IPNetwork.Parse("10.200.255.0/24"), Default.Block(255));
        Assert.Throws<ArgumentOutOfRangeException>(() => Default.Block(256));
        for (int i = 0; i < Default.Count; i++)
        {
            Assert.True(Default.TryIndexOf(Default.Block(i), out int back));
            Assert.Equal(i, back);
        }

        var small = new MeshBlockPlan("10.9.0.0/24", 26);
        Assert.Equal(4, small.Count);
        Assert.Equal(IPNetwork.Parse("10.9.0.192/26"), small.Block(3));
    }

    [Theory]
    [InlineData("10.200.7.0/25")] // another size
    [InlineData("10.201.7.0/24")] // outside the CIDR
    [InlineData("10.200.0.0/16")] // the whole CIDR
    [InlineData("10.200.7.5/24")] // not aligned
    [InlineData("fd00::/120")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("10.200.7.0")]
    public void ABlockOfAnotherShapeIsNotOneOfThePlans(string? block) =>
        Assert.False(Default.TryIndexOf(block, out _));

    [Theory]
    [InlineData("10.200.0.0/16", 15)]
    [InlineData("10.200.0.0/16", 31)]
    [InlineData("10.0.0.0/8", 30)] // 2^22 blocks is fine...
    [InlineData("0.0.0.0/0", 30)] // ...2^30 is not
    [InlineData("fd00::/64", 80)]
    public void RefusesPlansThatDoNotFit(string cidr, int prefix)
    {
        if (cidr == "10.0.0.0/8")
        {
            Assert.Equal(1 << 22, new MeshBlockPlan(cidr, prefix).Count);
            return;
        }

        ArgumentException e = Assert.Throws<ArgumentException>(() => new MeshBlockPlan(cidr, prefix));
        Assert.DoesNotContain("Parameter", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChoosesFromTheNodesHashAndProbesUpwardsWrapping()
    {
        ulong id = 0x1234_5678_9abc_def0UL;
        int start = Default.StartIndex(id);
        Assert.Equal((int)(id % 256), start);
        Assert.Equal(start, Default.Choose(id, new HashSet<int>()));
        Assert.Equal((start + 1) % 256, Default.Choose(id, new HashSet<int> { start }));
        Assert.Equal((start + 3) % 256, Default.Choose(id, new HashSet<int> { start, (start + 1) % 256, (start + 2) % 256 }));

        // Wraps past the last block.
        ulong last = 255;
        Assert.Equal(0, Default.Choose(last, new HashSet<int> { 255 }));

        // All taken: none.
        Assert.Null(Default.Choose(id, Enumerable.Range(0, 256).ToHashSet()));
    }

    [Fact]
    public void TheLowestNodeIdHoldsAContestedBlock()
    {
        var claims = new MeshBlockClaims(Default, [(30UL, "c", "10.200.7.0/24"), (10UL, "a", "10.200.7.0/24"), (20UL, "b", "10.200.8.0/24"), (40UL, "d", "10.200.9.0/25")]);
        Assert.Equal(10UL, claims.HolderOf(7));
        Assert.Equal(20UL, claims.HolderOf(8));
        Assert.Null(claims.HolderOf(9)); // d's claim is of another size: no claim
        Assert.Equal(IPNetwork.Parse("10.200.7.0/24"), claims.HeldBy(10));
        Assert.Null(claims.HeldBy(30));
        Assert.Null(claims.HeldBy(40));
        Assert.Equal(new HashSet<int> { 7, 8 }, claims.Taken);

        Assert.Null(claims.CheckRoute(10, "10.200.7.1"));
        Assert.Null(claims.CheckRoute(20, "10.200.8.254"));
        Assert.Contains("held by a (lower node id)", claims.CheckRoute(30, "10.200.7.1"), StringComparison.Ordinal);
        Assert.Contains("outside its node's block 10.200.8.0/24", claims.CheckRoute(20, "10.200.7.1"), StringComparison.Ordinal);
        Assert.Contains("outside", claims.CheckRoute(20, "not-an-address"), StringComparison.Ordinal);
        Assert.Contains("outside", claims.CheckRoute(20, ""), StringComparison.Ordinal);
        Assert.Contains("claims no mesh address block", claims.CheckRoute(40, "10.200.9.1"), StringComparison.Ordinal);
        Assert.Contains("claims no mesh address block", claims.CheckRoute(99, "10.200.9.1"), StringComparison.Ordinal);
    }

    [Fact]
    public void ANodeKeepsItsBlockUnlessALowerIdClaimsIt()
    {
        IPNetwork seven = Default.Block(7);
        Assert.Equal(7, MeshBlockKeeper.Decide(Default, 20, seven, new MeshBlockClaims(Default, [])));
        Assert.Equal(7, MeshBlockKeeper.Decide(Default, 20, seven, new MeshBlockClaims(Default, [(30UL, "c", "10.200.7.0/24")])));

        // A lower id claims it: move to the first block from this node's start that nobody claims.
        ulong self = 256 * 5 + 7; // starts at block 7
        var others = new MeshBlockClaims(Default, [(3UL, "a", "10.200.7.0/24"), (900_000UL, "z", "10.200.8.0/24")]);
        Assert.Equal(9, MeshBlockKeeper.Decide(Default, self, seven, others));

        // No block held (none was free): take one once one is.
        Assert.Equal(7, MeshBlockKeeper.Decide(Default, self, null, new MeshBlockClaims(Default, [])));
        var full = new MeshBlockClaims(Default, Enumerable.Range(0, 256).Select(i => ((ulong)i, "n" + i, Default.Block(i).ToString()))!);
        Assert.Null(MeshBlockKeeper.Decide(Default, self, seven, full));
    }

    /// <summary>
    /// Many nodes of one mesh, each deciding from the others' claims in rounds (all at once, the
    /// worst case for two movers picking the same free block), end with distinct blocks, the lowest
    /// id of every first collision keeping its block, and the same result in any order of the claims.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void NodesDecidingTogetherEndWithDistinctBlocks(int seed)
    {
        var random = new Random(seed);
        var plan = new MeshBlockPlan("10.200.0.0/16", 22); // 64 blocks
        ulong[] ids = [.. Enumerable.Range(0, 48).Select(_ => (ulong)random.NextInt64())];
        var blocks = ids.ToDictionary(id => id, id => (IPNetwork?)plan.Block(plan.StartIndex(id)));
        var firstHolders = blocks.GroupBy(b => b.Value).Select(g => g.Min(p => p.Key)).ToHashSet();

        int rounds = 0;
        while (true)
        {
            var next = new Dictionary<ulong, IPNetwork?>();
            foreach (ulong id in ids)
            {
                var others = blocks.Where(b => b.Key != id).Select(b => (b.Key, "n", b.Value?.ToString())).OrderBy(_ => random.Next()).ToList();
                int? index = MeshBlockKeeper.Decide(plan, id, blocks[id], new MeshBlockClaims(plan, others));
                next[id] = index is { } i ? plan.Block(i) : null;
            }

            if (next.All(n => Nullable.Equals(n.Value, blocks[n.Key])))
            {
                break;
            }

            blocks = next;
            Assert.True(++rounds < 100, "no fixpoint");
        }

        Assert.Equal(ids.Length, blocks.Values.Distinct().Count());
        Assert.All(blocks.Values, b => Assert.NotNull(b));
        foreach (ulong holder in firstHolders)
        {
            Assert.Equal(plan.Block(plan.StartIndex(holder)), blocks[holder]);
        }
    }
}
