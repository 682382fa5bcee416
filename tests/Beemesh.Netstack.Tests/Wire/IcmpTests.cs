using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

public class IcmpTests
{
    [Fact]
    public void ParsesCapturedIcmpv4PortUnreachable()
    {
        byte[] frame = Captures.Icmp4PortUnreachable;
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out Ipv4Packet ip));
        Assert.Equal(IpProtocol.Icmp, ip.Protocol);
        Assert.True(Icmpv4Packet.TryCreate(ip.Payload, out Icmpv4Packet icmp));
        Assert.Equal(Icmpv4Type.DestinationUnreachable, icmp.Type);
        Assert.Equal(3, icmp.Code);
        Assert.Equal(0x9b90, icmp.Checksum);
        Assert.True(icmp.VerifyChecksum());
        Assert.Equal(0u, icmp.RestOfHeader);
        Assert.True(Ipv4Packet.TryCreate(icmp.Payload, out Ipv4Packet quoted));
        Assert.Equal(IpProtocol.Udp, quoted.Protocol);

        Assert.True(Icmpv4Repr.TryParse(icmp, out Icmpv4Repr repr));
        byte[] emitted = frame[34..];
        emitted.AsSpan(0, 8).Clear();
        repr.Emit(emitted);
        Assert.Equal(frame[34..], emitted);
    }

    [Fact]
    public void EchoRequestFromRfc792Layout()
    {
        // Echo request id 0x1234 seq 1 with "abcd"; the checksum was computed by hand from the words.
        byte[] bytes = Hex.Bytes("0800 0000 1234 0001 6162 6364");
        Assert.True(Icmpv4Packet.TryCreate(bytes, out Icmpv4Packet icmp));
        Assert.False(icmp.VerifyChecksum());
        icmp.FillChecksum();
        // 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xDEFB; ~ = 0x2104.
        Assert.Equal(0x2104, icmp.Checksum);
        Assert.True(icmp.VerifyChecksum());
        Assert.Equal(Icmpv4Type.EchoRequest, icmp.Type);
        Assert.Equal(0x1234, icmp.Identifier);
        Assert.Equal(1, icmp.SequenceNumber);

        // Answer in place: type 0, same id/seq/payload.
        new Icmpv4Repr(Icmpv4Type.EchoReply, 0, icmp.Identifier, icmp.SequenceNumber, icmp.Payload.Length).Emit(bytes);
        Assert.Equal(Hex.Bytes("0000 2904 1234 0001 6162 6364"), bytes);
        Assert.True(icmp.VerifyChecksum());
    }

    [Fact]
    public void ParsesCapturedIcmpv6PortUnreachable()
    {
        byte[] frame = Captures.Icmp6PortUnreachable;
        Assert.True(Ipv6Packet.TryCreate(frame.AsSpan(14), out Ipv6Packet ip));
        Assert.Equal(IpProtocol.Icmpv6, ip.NextHeader);
        Assert.True(Icmpv6Packet.TryCreate(ip.Payload, out Icmpv6Packet icmp));
        Assert.Equal(Icmpv6Type.DestinationUnreachable, icmp.Type);
        Assert.Equal(4, icmp.Code);
        Assert.Equal(0xc3ba, icmp.Checksum);
        Assert.True(icmp.VerifyChecksum(ip.Source, ip.Destination));
        Assert.False(icmp.VerifyChecksum(ip.Source, Ipv6Address.AllNodes));
        Assert.Equal(50, icmp.Payload.Length);

        Assert.True(Icmpv6Repr.TryParse(icmp, ip.Source, ip.Destination, out Icmpv6Repr repr));
        byte[] emitted = frame[54..];
        emitted.AsSpan(0, 8).Clear();
        repr.Emit(emitted, ip.Source, ip.Destination);
        Assert.Equal(frame[54..], emitted);
    }

    [Fact]
    public void Icmpv6EchoReprCarriesIdentifierAndSequence()
    {
        Icmpv6Repr repr = Icmpv6Repr.Echo(Icmpv6Type.EchoRequest, 0xBEEF, 7, 0);
        byte[] bytes = new byte[8];
        repr.Emit(bytes, Ipv6Address.Loopback, Ipv6Address.Loopback);
        Assert.True(Icmpv6Packet.TryCreate(bytes, out Icmpv6Packet icmp));
        Assert.Equal(0xBEEF, icmp.Identifier);
        Assert.Equal(7, icmp.SequenceNumber);
        Assert.True(icmp.VerifyChecksum(Ipv6Address.Loopback, Ipv6Address.Loopback));
        Assert.Equal(0xBEEF, repr.Identifier);
        Assert.Equal(7, repr.SequenceNumber);
    }

    [Fact]
    public void RejectsShortMessages()
    {
        Assert.False(Icmpv4Packet.TryCreate(new byte[7], out _));
        Assert.False(Icmpv6Packet.TryCreate(new byte[7], out _));
    }
}
