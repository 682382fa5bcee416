using System.Buffers.Binary;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A guest SYN to a stack service that is closed (the gateway under --disable-host-loopback, the DNS
/// address off port 53) is answered as slirp4netns answers it: ICMP network unreachable quoting the
/// SYN, so the guest's connect fails with ENETUNREACH, not ECONNREFUSED.
/// </summary>
public class NetworkStackUnreachableTests
{
    [Theory]
    [InlineData(GatewayIp, (ushort)8080)]
    [InlineData(DnsIp, (ushort)80)]
    public void SynToClosedStackService_IsAnsweredWithIcmpNetworkUnreachableQuotingTheSyn(uint service, ushort port)
    {
        using var ctx = new StackTestContext(configure: o => o.DisableHostLoopback = true);

        List<byte[]> frames = ctx.Exchange(Tcp4Frame(GuestIp, service, 41000, port, 123456, 0, TcpFlags.Syn, options: MssOption));

        byte[] frame = Assert.Single(frames);
        EmittedFrameChecker.AssertWellFormed(frame, vnet: false);
        Assert.True(Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip));
        Assert.Equal(IpProtocol.Icmp, ip.Protocol);
        ReadOnlySpan<byte> icmp = ip.Payload;
        Assert.Equal(0, InternetChecksum.Fold(InternetChecksum.Sum(icmp)));
        Assert.Equal(3, icmp[0]); // destination unreachable
        Assert.Equal(0, icmp[1]); // network
        ReadOnlySpan<byte> inner = icmp[8..];
        Assert.Equal(0x45, inner[0]);
        Assert.Equal((byte)IpProtocol.Tcp, inner[9]);
        Assert.Equal(GuestIp, BinaryPrimitives.ReadUInt32BigEndian(inner[12..]));
        Assert.Equal(service, BinaryPrimitives.ReadUInt32BigEndian(inner[16..]));
        Assert.Equal((ushort)41000, BinaryPrimitives.ReadUInt16BigEndian(inner[20..]));
        Assert.Equal(port, BinaryPrimitives.ReadUInt16BigEndian(inner[22..]));
        Assert.Equal(123456u, BinaryPrimitives.ReadUInt32BigEndian(inner[24..]));
        Assert.Equal(1, ctx.Counters.IcmpUnreachableSent);
    }

    [Fact]
    public void SynToClosedGateway6_IsAnsweredWithIcmpv6NoRoute()
    {
        using var ctx = new StackTestContext(ipv6: true, configure: o => o.DisableHostLoopback = true);
        byte[] syn = TcpSegment(41000, 8080, 99, 0, TcpFlags.Syn);
        Span<byte> l4 = syn;
        uint sum = InternetChecksum.Sum(l4, Pseudo6(Guest6, Gateway6, IpProtocol.Tcp, l4.Length));
        BinaryPrimitives.WriteUInt16BigEndian(l4[16..], InternetChecksum.Fold(sum));

        List<byte[]> frames = ctx.Exchange(Ethernet(0x86DD, Ipv6(Guest6, Gateway6, IpProtocol.Tcp, syn)));

        // Router advertisements may come out too; the answer is the one unreachable.
        byte[] frame = Assert.Single(frames, f => f.Length > 14 + 40 && f[14 + 6] == (byte)IpProtocol.Icmpv6 && f[14 + 40] == 1);
        Assert.True(Ipv6Packet.TryCreate(frame.AsSpan(14), out var ip));
        ReadOnlySpan<byte> icmp = ip.Payload;
        Assert.Equal(1, icmp[0]);
        Assert.Equal(0, icmp[1]);
        Assert.Equal((byte)IpProtocol.Tcp, icmp[8 + 6]);
        Assert.Equal(99u, BinaryPrimitives.ReadUInt32BigEndian(icmp[(8 + 40 + 4)..]));
    }

    [Fact]
    public void SynToGatewayWithHostLoopbackOn_IsNotAnsweredWithIcmp()
    {
        using var ctx = new StackTestContext();

        ctx.Exchange(Tcp4Frame(GuestIp, GatewayIp, 41000, 1, 5, 0, TcpFlags.Syn));

        Assert.Equal(0, ctx.Counters.IcmpUnreachableSent);
    }
}
