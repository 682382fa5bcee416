using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class Ipv4PacketTests
{
    [Fact]
    public void ParsesCapturedHeader()
    {
        byte[] frame = Captures.TcpSyn;
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out Ipv4Packet packet));
        Assert.Equal(4, packet.Version);
        Assert.Equal(20, packet.HeaderLength);
        Assert.Equal(60, packet.TotalLength);
        Assert.Equal(0xd8b1, packet.Identification);
        Assert.True(packet.DontFragment);
        Assert.False(packet.MoreFragments);
        Assert.False(packet.IsFragment);
        Assert.Equal(64, packet.Ttl);
        Assert.Equal(IpProtocol.Tcp, packet.Protocol);
        Assert.Equal(0x6408, packet.Checksum);
        Assert.True(packet.VerifyChecksum());
        Assert.Equal(Ipv4Address.Loopback, packet.Source);
        Assert.Equal(Ipv4Address.Loopback, packet.Destination);
        Assert.Equal(40, packet.Payload.Length);
        Assert.Equal(0, packet.Options.Length);
    }

    [Fact]
    public void ReprEmitsTheCapturedHeader()
    {
        byte[] frame = Captures.TcpSyn;
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out Ipv4Packet packet));
        Assert.True(Ipv4Repr.TryParse(packet, out Ipv4Repr repr));
        Assert.Equal(40, repr.PayloadLength);
        Assert.Equal(0xd8b1, repr.Identification);

        byte[] emitted = new byte[20];
        repr.Emit(emitted);
        Assert.Equal(frame[14..34], emitted);
    }

    [Fact]
    public void TosIsKeptThroughParseAndEmit()
    {
        byte[] frame = Captures.Icmp4PortUnreachable;
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out Ipv4Packet packet));
        Assert.Equal(0x30, packet.Dscp);
        Assert.False(packet.DontFragment);
        Assert.True(Ipv4Repr.TryParse(packet, out Ipv4Repr repr));
        byte[] emitted = new byte[20];
        repr.Emit(emitted);
        Assert.Equal(frame[14..34], emitted);
    }

    [Fact]
    public void TrailingPaddingIsNotPayload()
    {
        byte[] bytes = new byte[14 + 60];
        Captures.Udp4.CopyTo(bytes, 0);
        Assert.True(Ipv4Packet.TryCreate(bytes.AsSpan(14), out Ipv4Packet packet));
        Assert.Equal(31, packet.Buffer.Length);
        Assert.Equal(11, packet.Payload.Length);
    }

    [Fact]
    public void BadChecksumFailsReprParse()
    {
        byte[] bytes = Captures.TcpSyn[14..];
        bytes[8] = 63;
        Assert.True(Ipv4Packet.TryCreate(bytes, out Ipv4Packet packet));
        Assert.False(packet.VerifyChecksum());
        Assert.False(Ipv4Repr.TryParse(packet, out _));
        Assert.True(Ipv4Repr.TryParse(packet, out _, verifyChecksum: false));
        packet.FillChecksum();
        Assert.True(packet.VerifyChecksum());
    }

    [Theory]
    [InlineData(0, 0x55)] // version 5
    [InlineData(0, 0x44)] // IHL 4
    [InlineData(3, 0x13)] // total length 19 < IHL
    [InlineData(3, 0x3D)] // total length 61 > buffer
    public void RejectsInconsistentLengths(int index, byte value)
    {
        byte[] bytes = Captures.TcpSyn[14..];
        bytes[index] = value;
        Assert.False(Ipv4Packet.TryCreate(bytes, out _));
    }

    [Fact]
    public void OptionsAndFragmentsAreReported()
    {
        byte[] bytes = new byte[28];
        Ipv4Packet packet = Ipv4Packet.CreateUnchecked(bytes);
        packet.Version = 4;
        packet.HeaderLength = 24;
        packet.TotalLength = 28;
        packet.MoreFragments = true;
        packet.FragmentOffset = 1480;
        Assert.True(Ipv4Packet.TryCreate(bytes, out packet));
        Assert.Equal(4, packet.Options.Length);
        Assert.Equal(4, packet.Payload.Length);
        Assert.True(packet.IsFragment);
        Assert.Equal(1480, packet.FragmentOffset);
        Assert.Equal(0x20, bytes[6] & 0xE0);
        Assert.Equal(185, ((bytes[6] & 0x1F) << 8) | bytes[7]);
        Assert.True(Ipv4Repr.TryParse(packet, out Ipv4Repr repr, verifyChecksum: false));
        Assert.True(repr.IsFragment);
    }

    [Fact]
    public void LengthSettersCannotPushAccessorsOutOfRange()
    {
        byte[] bytes = Captures.TcpSyn[14..];
        Assert.True(Ipv4Packet.TryCreate(bytes, out Ipv4Packet packet));
        packet.TotalLength = ushort.MaxValue;
        packet.HeaderLength = 60;
        Assert.Equal(40, packet.Options.Length);
        Assert.Equal(0, packet.Payload.Length);
        packet.HeaderLength = 8;
        packet.TotalLength = 4;
        Assert.Equal(0, packet.Options.Length);
        Assert.Equal(0, packet.Payload.Length);
        Assert.Equal(8, packet.Header.Length);
    }
}
