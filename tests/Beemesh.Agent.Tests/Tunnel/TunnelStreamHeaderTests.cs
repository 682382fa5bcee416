using System.Buffers;
using Beemesh.Agent.Client;

namespace Beemesh.Agent.Tests.Tunnel;

/// <summary>The QUIC tunnel stream header: golden bytes, incremental parsing, and every refusal.</summary>
public sealed class TunnelStreamHeaderTests
{
    // version 1, kind 1 (server name), length 12, "api.shop.org"
    private static readonly byte[] Golden = [0x01, 0x01, 0x0c, .. "api.shop.org"u8];

    [Fact]
    public void EmitsTheGoldenBytes()
    {
        TunnelStreamHeader header = TunnelStreamHeader.ForServerName("api.shop.org");
        Assert.Equal(15, header.BufferLength);
        Assert.Equal(Golden, header.ToArray());
    }

    [Fact]
    public void ParsesTheGoldenBytesAndLeavesTheFlowsBytes()
    {
        byte[] stream = [.. Golden, 0x16, 0x03, 0x01];
        Assert.Equal(OperationStatus.Done, TunnelStreamHeader.TryParse(stream, out TunnelStreamHeader header, out int consumed, out string? error));
        Assert.Null(error);
        Assert.Equal(TunnelStreamTarget.ServerName, header.Target);
        Assert.Equal("api.shop.org", header.Name);
        Assert.Equal(Golden.Length, consumed);
    }

    [Fact]
    public void EveryProperPrefixNeedsMoreData()
    {
        for (int length = 0; length < Golden.Length; length++)
        {
            Assert.Equal(OperationStatus.NeedMoreData, TunnelStreamHeader.TryParse(Golden.AsSpan(0, length), out _, out int consumed, out string? error));
            Assert.Equal(0, consumed);
            Assert.Null(error);
        }
    }

    [Theory]
    [InlineData(new byte[] { 0x02 }, "version 2")]
    [InlineData(new byte[] { 0x00, 0x01, 0x01, (byte)'a' }, "version 0")]
    [InlineData(new byte[] { 0x01, 0x00 }, "target kind 0")]
    [InlineData(new byte[] { 0x01, 0x02 }, "target kind 2")]
    [InlineData(new byte[] { 0x01, 0x01, 0x00 }, "length 0")]
    [InlineData(new byte[] { 0x01, 0x01, 0xfe }, "length 254")]
    [InlineData(new byte[] { 0x01, 0x01, 0x03, (byte)'a', (byte)'B', (byte)'c' }, "0x42")]
    [InlineData(new byte[] { 0x01, 0x01, 0x02, (byte)'a', 0x00 }, "0x00")]
    [InlineData(new byte[] { 0x01, 0x01, 0x02, (byte)'a', (byte)'/' }, "0x2f")]
    public void RefusesInvalidHeadersAsSoonAsTheBadByteArrives(byte[] data, string why)
    {
        Assert.Equal(OperationStatus.InvalidData, TunnelStreamHeader.TryParse(data, out _, out int consumed, out string? error));
        Assert.Equal(0, consumed);
        Assert.Contains(why, error);
    }

    [Fact]
    public void TheLongestNameRoundTrips()
    {
        string name = string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..TunnelStreamHeader.MaxNameLength];
        byte[] bytes = TunnelStreamHeader.ForServerName(name).ToArray();
        Assert.Equal(TunnelStreamHeader.MaxLength, bytes.Length);
        Assert.Equal(OperationStatus.Done, TunnelStreamHeader.TryParse(bytes, out TunnelStreamHeader header, out int consumed, out _));
        Assert.Equal(name, header.Name);
        Assert.Equal(bytes.Length, consumed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("API.shop.org")]
    [InlineData("api shop")]
    [InlineData("api.shop.örg")]
    public void RefusesToEmitAnInvalidName(string name)
    {
        Assert.NotNull(TunnelStreamHeader.CheckName(name));
        Assert.Throws<ArgumentException>(() => TunnelStreamHeader.ForServerName(name).ToArray());
    }

    [Fact]
    public void RefusesToEmitANameLongerThanTheLimit()
    {
        string name = new('a', TunnelStreamHeader.MaxNameLength + 1);
        Assert.Contains("longer than 253", TunnelStreamHeader.CheckName(name));
        Assert.Throws<ArgumentException>(() => TunnelStreamHeader.ForServerName(name).ToArray());
    }

    [Fact]
    public void RefusesABufferTooSmall()
    {
        Assert.Throws<ArgumentException>(() => TunnelStreamHeader.ForServerName("a.b").Emit(new byte[5]));
    }

    [Fact]
    public void ServerNamesOfTheTunnelAreValidNames()
    {
        Assert.Null(TunnelStreamHeader.CheckName(TunnelServerName.For("Orders", "Shop", "Example.ORG")));
    }
}
