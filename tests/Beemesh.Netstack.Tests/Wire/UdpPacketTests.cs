using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class UdpPacketTests
{
    [Fact]
    public void ParsesAndEmitsCapturedIpv4Datagram()
    {
        byte[] frame = Captures.Udp4;
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out Ipv4Packet ip));
        Assert.True(UdpPacket.TryCreate(ip.Payload, out UdpPacket udp));
        Assert.Equal(60527, udp.SourcePort);
        Assert.Equal(45679, udp.DestinationPort);
        Assert.Equal(11, udp.Length);
        Assert.Equal("abc"u8.ToArray(), udp.Payload.ToArray());
        Assert.True(udp.VerifyChecksumV4(ip.Source, ip.Destination));
        Assert.True(UdpRepr.TryParse(udp, out UdpRepr repr));
        Assert.Equal(new UdpRepr(60527, 45679, 3), repr);

        byte[] emitted = new byte[repr.BufferLength];
        repr.Emit(emitted);
        "abc"u8.CopyTo(emitted.AsSpan(8));
        Assert.True(UdpPacket.TryCreate(emitted, out UdpPacket built));
        built.FillChecksumV4(ip.Source, ip.Destination);
        Assert.Equal(frame[34..], emitted);
    }

    [Fact]
    public void ParsesAndEmitsCapturedIpv6Datagram()
    {
        byte[] frame = Captures.Udp6;
        Assert.True(Ipv6Packet.TryCreate(frame.AsSpan(14), out Ipv6Packet ip));
        Assert.True(UdpPacket.TryCreate(ip.Payload, out UdpPacket udp));
        Assert.Equal(0x4777, udp.Checksum);
        Assert.True(udp.VerifyChecksumV6(ip.Source, ip.Destination));
        Assert.True(UdpRepr.TryParse(udp, out UdpRepr repr));

        byte[] emitted = new byte[repr.BufferLength];
        repr.Emit(emitted);
        "v6"u8.CopyTo(emitted.AsSpan(8));
        Assert.True(UdpPacket.TryCreate(emitted, out UdpPacket built));
        built.FillChecksumV6(ip.Source, ip.Destination);
        Assert.Equal(frame[54..], emitted);
    }

    [Fact]
    public void ZeroChecksumMeansNoneOverIpv4ButIsInvalidOverIpv6()
    {
        byte[] bytes = Captures.Udp4[34..];
        bytes[6] = 0;
        bytes[7] = 0;
        Assert.True(UdpPacket.TryCreate(bytes, out UdpPacket udp));
        Assert.True(udp.VerifyChecksumV4(Ipv4Address.Loopback, Ipv4Address.Broadcast));
        Assert.False(udp.VerifyChecksumV6(Ipv6Address.Loopback, Ipv6Address.Loopback));
    }

    [Fact]
    public void ComputedZeroIsSentAsAllOnes()
    {
        // Choose the payload so the ones' complement sum is 0xFFFF: the checksum would be 0.
        Ipv4Address source = new(10, 0, 2, 15);
        Ipv4Address destination = new(10, 0, 2, 2);
        byte[] bytes = new byte[10];
        new UdpRepr(1000, 2000, 2).Emit(bytes);
        uint partial = InternetChecksum.Sum(bytes, InternetChecksum.PseudoHeaderV4(source, destination, IpProtocol.Udp, 10));
        ushort filler = (ushort)(0xFFFF - partial);
        bytes[8] = (byte)(filler >> 8);
        bytes[9] = (byte)filler;
        Assert.True(UdpPacket.TryCreate(bytes, out UdpPacket udp));
        udp.FillChecksumV4(source, destination);
        Assert.Equal(0xFFFF, udp.Checksum);
        Assert.True(udp.VerifyChecksumV4(source, destination));

        Ipv6Address source6 = Ipv6Address.Parse("fd00::100");
        Ipv6Address destination6 = Ipv6Address.Parse("fd00::2");
        udp.Checksum = 0;
        partial = InternetChecksum.Sum(bytes.AsSpan(0, 8), InternetChecksum.PseudoHeaderV6(source6, destination6, IpProtocol.Udp, 10));
        filler = (ushort)(0xFFFF - partial);
        bytes[8] = (byte)(filler >> 8);
        bytes[9] = (byte)filler;
        udp.FillChecksumV6(source6, destination6);
        Assert.Equal(0xFFFF, udp.Checksum);
        Assert.True(udp.VerifyChecksumV6(source6, destination6));
    }

    [Theory]
    [InlineData(7)]
    [InlineData(12)]
    public void RejectsLengthFieldOutsideBuffer(int length)
    {
        byte[] bytes = Captures.Udp4[34..];
        bytes[5] = (byte)length;
        Assert.False(UdpPacket.TryCreate(bytes, out _));
    }

    [Fact]
    public void LengthFieldShorterThanBufferTrimsPayload()
    {
        byte[] bytes = new byte[20];
        Captures.Udp4.AsSpan(34).CopyTo(bytes);
        Assert.True(UdpPacket.TryCreate(bytes, out UdpPacket udp));
        Assert.Equal(3, udp.Payload.Length);
        Assert.Equal(11, udp.Buffer.Length);
    }
}
