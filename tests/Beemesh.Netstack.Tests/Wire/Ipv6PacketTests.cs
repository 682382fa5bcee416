using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class Ipv6PacketTests
{
    [Fact]
    public void ParsesAndEmitsCapturedHeader()
    {
        byte[] frame = Captures.Udp6;
        Assert.True(EthernetFrame.TryCreate(frame, out EthernetFrame ethernet));
        Assert.Equal(EtherType.Ipv6, ethernet.EtherType);
        Assert.True(Ipv6Packet.TryCreate(ethernet.Payload, out Ipv6Packet packet));
        Assert.Equal(6, packet.Version);
        Assert.Equal(0, packet.TrafficClass);
        Assert.Equal(0x810eeu, packet.FlowLabel);
        Assert.Equal(10, packet.PayloadLength);
        Assert.Equal(IpProtocol.Udp, packet.NextHeader);
        Assert.Equal(64, packet.HopLimit);
        Assert.Equal(Ipv6Address.Loopback, packet.Source);
        Assert.Equal(Ipv6Address.Loopback, packet.Destination);
        Assert.Equal(10, packet.Payload.Length);

        Assert.True(Ipv6Repr.TryParse(packet, out Ipv6Repr repr));
        byte[] emitted = new byte[40];
        repr.Emit(emitted);
        Assert.Equal(frame[14..54], emitted);
    }

    [Fact]
    public void TrafficClassAndFlowLabelSettersKeepNeighbours()
    {
        byte[] bytes = new byte[40];
        Ipv6Packet packet = Ipv6Packet.CreateUnchecked(bytes);
        packet.Version = 6;
        packet.TrafficClass = 0xAB;
        packet.FlowLabel = 0xFFFFF;
        Assert.Equal(Hex.Bytes("6ABFFFFF"), bytes[..4]);
        packet.FlowLabel = 0x12345;
        Assert.Equal(0xAB, packet.TrafficClass);
        Assert.Equal(6, packet.Version);
        Assert.Equal(0x12345u, packet.FlowLabel);
    }

    [Fact]
    public void RejectsWrongVersionOrPayloadLength()
    {
        byte[] bytes = Captures.Udp6[14..];
        bytes[5] = 11;
        Assert.False(Ipv6Packet.TryCreate(bytes, out _));
        bytes = Captures.Udp6[14..];
        bytes[0] = 0x40;
        Assert.False(Ipv6Packet.TryCreate(bytes, out _));
        Assert.False(Ipv6Packet.TryCreate(new byte[39], out _));
    }

    [Fact]
    public void WalksHopByHopAndDestinationOptionsToTcp()
    {
        byte[] bytes = new byte[40 + 8 + 16 + 20];
        new Ipv6Repr(Ipv6Address.Loopback, Ipv6Address.Loopback, IpProtocol.Ipv6HopByHop, bytes.Length - 40).Emit(bytes);
        bytes[40] = (byte)IpProtocol.Ipv6Opts; // hop-by-hop: next = dest opts, length 0 (8 bytes)
        bytes[41] = 0;
        bytes[48] = (byte)IpProtocol.Tcp; // dest opts: next = TCP, length 1 (16 bytes)
        bytes[49] = 1;
        Assert.True(Ipv6Packet.TryFindUpperLayer(bytes, out IpProtocol protocol, out int offset));
        Assert.Equal(IpProtocol.Tcp, protocol);
        Assert.Equal(64, offset);
    }

    [Fact]
    public void ReportsFragmentHeaderAsIs()
    {
        byte[] bytes = new byte[40 + 16];
        new Ipv6Repr(Ipv6Address.Loopback, Ipv6Address.Loopback, IpProtocol.Ipv6Route, 16).Emit(bytes);
        bytes[40] = (byte)IpProtocol.Ipv6Fragment;
        Assert.True(Ipv6Packet.TryFindUpperLayer(bytes, out IpProtocol protocol, out int offset));
        Assert.Equal(IpProtocol.Ipv6Fragment, protocol);
        Assert.Equal(48, offset);
    }

    [Fact]
    public void RejectsTruncatedOrMisplacedExtensionHeaders()
    {
        byte[] bytes = new byte[40 + 8];
        new Ipv6Repr(Ipv6Address.Loopback, Ipv6Address.Loopback, IpProtocol.Ipv6Opts, 8).Emit(bytes);
        bytes[40] = (byte)IpProtocol.Udp;
        bytes[41] = 1; // claims 16 bytes, only 8 present
        Assert.False(Ipv6Packet.TryFindUpperLayer(bytes, out _, out _));

        bytes[40] = (byte)IpProtocol.Ipv6HopByHop; // hop-by-hop after dest opts
        bytes[41] = 0;
        Assert.False(Ipv6Packet.TryFindUpperLayer(bytes, out _, out _));
    }

    [Fact]
    public void RejectsEndlessChains()
    {
        byte[] bytes = new byte[40 + (8 * 20)];
        new Ipv6Repr(Ipv6Address.Loopback, Ipv6Address.Loopback, IpProtocol.Ipv6Opts, 8 * 20).Emit(bytes);
        for (int i = 0; i < 20; i++)
        {
            bytes[40 + (8 * i)] = (byte)IpProtocol.Ipv6Opts;
        }

        Assert.False(Ipv6Packet.TryFindUpperLayer(bytes, out _, out _));
    }

    [Fact]
    public void UpperLayerDirectlyAfterFixedHeader()
    {
        Assert.True(Ipv6Packet.TryFindUpperLayer(Captures.Udp6.AsSpan(14), out IpProtocol protocol, out int offset));
        Assert.Equal(IpProtocol.Udp, protocol);
        Assert.Equal(40, offset);
    }
}
