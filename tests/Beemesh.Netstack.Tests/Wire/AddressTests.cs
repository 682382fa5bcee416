using System.Net;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class AddressTests
{
    [Fact]
    public void MacAddressRoundTripsText()
    {
        Assert.True(MacAddress.TryParse("52:55:0A:00:02:02", out MacAddress mac));
        Assert.Equal("52:55:0a:00:02:02", mac.ToString());
        Assert.True(MacAddress.TryParse("52-55-0a-00-02-02", out MacAddress dashed));
        Assert.Equal(mac, dashed);
        Assert.False(MacAddress.TryParse("52:55:0a:00:02", out _));
        Assert.False(MacAddress.TryParse("52:55:0a:00:02:zz", out _));
        Assert.False(MacAddress.TryParse("52:55:0a:00:02:0202", out _));
    }

    [Fact]
    public void MacAddressBytesAndClassification()
    {
        byte[] bytes = [0x33, 0x33, 0xff, 0x00, 0x00, 0x01];
        MacAddress mac = MacAddress.ReadFrom(bytes);
        Assert.True(mac.IsMulticast);
        Assert.False(mac.IsBroadcast);
        byte[] written = new byte[6];
        mac.CopyTo(written);
        Assert.Equal(bytes, written);
        Assert.True(MacAddress.Broadcast.IsBroadcast);
        Assert.True(MacAddress.Broadcast.IsMulticast);
        Assert.False(new MacAddress(0x52, 0x55, 10, 0, 2, 2).IsMulticast);
        Assert.Equal(mac, MacAddress.FromIpv6Multicast(Ipv6Address.Parse("ff02::1:ff00:1")));
    }

    [Fact]
    public void Ipv4AddressConversions()
    {
        Ipv4Address address = Ipv4Address.Parse("10.0.2.2");
        Assert.Equal(0x0A000202u, address.Value);
        Assert.Equal("10.0.2.2", address.ToString());
        Assert.Equal(IPAddress.Parse("10.0.2.2"), address.ToIPAddress());
        Assert.Equal(address, Ipv4Address.From(IPAddress.Parse("::ffff:10.0.2.2")));
        byte[] bytes = new byte[4];
        address.CopyTo(bytes);
        Assert.Equal(new byte[] { 10, 0, 2, 2 }, bytes);
        Assert.True(Ipv4Address.ReadFrom(bytes) == address);
        Assert.True(Ipv4Address.Parse("127.3.4.5").IsLoopback);
        Assert.True(Ipv4Address.Parse("224.0.0.251").IsMulticast);
        Assert.True(Ipv4Address.Broadcast.IsBroadcast);
        Assert.False(address.IsMulticast);
        Assert.Throws<ArgumentException>(() => Ipv4Address.From(IPAddress.IPv6Loopback));
    }

    [Theory]
    [InlineData("")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4.5")]
    [InlineData("256.1.1.1")]
    [InlineData("01.2.3.4")]
    [InlineData("1..3.4")]
    [InlineData("1.2.3.4 ")]
    public void Ipv4AddressRejectsBadText(string text) => Assert.False(Ipv4Address.TryParse(text, out _));

    [Fact]
    public void Ipv6AddressConversionsAndClassification()
    {
        Ipv6Address address = Ipv6Address.Parse("fe80::1234:5678:9abc");
        Assert.True(address.IsLinkLocal);
        Assert.False(address.IsMulticast);
        Assert.Equal(0xFE80_0000_0000_0000UL, address.High);
        Assert.Equal(0x0000_1234_5678_9ABCUL, address.Low);
        Assert.Equal(Ipv6Address.Parse("ff02::1:ff78:9abc"), address.SolicitedNodeMulticast());
        Assert.True(address.SolicitedNodeMulticast().IsMulticast);
        Assert.Equal(IPAddress.Parse("fe80::1234:5678:9abc"), address.ToIPAddress());
        Assert.Equal("fe80::1234:5678:9abc", address.ToString());
        Assert.True(Ipv6Address.Parse("::1").IsLoopback);
        Assert.True(Ipv6Address.Parse("::").IsUnspecified);
        Assert.False(Ipv6Address.Parse("fec0::1").IsLinkLocal);
        Assert.False(Ipv6Address.TryParse("10.0.2.2", out _));
        Assert.False(Ipv6Address.TryParse("fe80::1%eth0", out _));
        byte[] bytes = new byte[16];
        address.CopyTo(bytes);
        Assert.True(Ipv6Address.ReadFrom(bytes) == address);
        Assert.Equal(0xFE, bytes[0]);
        Assert.Equal(0xBC, bytes[15]);
    }
}
