using Beemesh.Agent.Workloads;

namespace Beemesh.Agent.Tests.Workloads;

public sealed class MeshAddressPoolTests
{
    [Fact]
    public void SkipsNetworkAndBroadcastAndIsStablePerKey()
    {
        var pool = new MeshAddressPool("10.9.0.0/30");
        Assert.Equal("10.9.0.1", pool.Allocate("default/a", _ => true)!.ToString());
        Assert.Equal("10.9.0.2", pool.Allocate("default/b", _ => true)!.ToString());
        Assert.Equal("10.9.0.1", pool.Allocate("default/a", _ => true)!.ToString());
        Assert.Null(pool.Allocate("default/c", _ => true));
    }

    [Fact]
    public void ReusesAddressOfAKeyWithoutLiveWorkloadsOnlyWhenFull()
    {
        var pool = new MeshAddressPool("10.9.0.0/30");
        pool.Allocate("default/a", _ => true);
        pool.Allocate("default/b", _ => true);
        var reused = pool.Allocate("default/c", key => key != "default/a");
        Assert.Equal("10.9.0.1", reused!.ToString());
    }

    [Theory]
    [InlineData("fd00::/64")]
    [InlineData("10.0.0.0/33")]
    [InlineData("nonsense")]
    public void RefusesNonIpv4Ranges(string cidr) =>
        Assert.Throws<ArgumentException>(() => new MeshAddressPool(cidr));
}
