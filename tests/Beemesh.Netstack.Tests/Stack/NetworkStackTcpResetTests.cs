using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>Segments the stack has no flow for are refused with RST exactly as RFC 9293 §3.10.7.1 says.</summary>
public class NetworkStackTcpResetTests
{
    [Fact]
    public void SynToUnusedSubnetAddress_IsAnsweredWithRstAck()
    {
        using var ctx = new StackTestContext();
        const uint Seq = 0xFFFF_FFF0;

        var reply = Assert.Single(ctx.ExchangeEthernet(Tcp4Frame(GuestIp, UnusedIp, 40000, 80, Seq, 0, TcpFlags.Syn, options: MssOption)));

        var (ip, tcp) = ParseTcp(reply);
        Assert.Equal(UnusedIp, ip.Source);
        Assert.Equal(GuestIp, ip.Destination);
        Assert.Equal((ushort)80, tcp.SourcePort);
        Assert.Equal((ushort)40000, tcp.DestinationPort);
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, tcp.Flags);
        Assert.Equal(0u, tcp.SequenceNumber);
        Assert.Equal(unchecked(Seq + 1), tcp.AcknowledgmentNumber);
        Assert.Equal(1, ctx.Counters.TcpConnectFailures);
    }

    [Fact]
    public void AckForUnknownFlow_IsAnsweredWithRstAtItsAck()
    {
        using var ctx = new StackTestContext();

        var reply = Assert.Single(ctx.ExchangeEthernet(Tcp4Frame(GuestIp, GatewayIp, 40001, 8080, 1000, 0xDEAD_BEEF, TcpFlags.Ack | TcpFlags.Psh, "hi"u8)));

        var (_, tcp) = ParseTcp(reply);
        Assert.Equal(TcpFlags.Rst, tcp.Flags);
        Assert.Equal(0xDEAD_BEEFu, tcp.SequenceNumber);
        Assert.Equal(1, ctx.Counters.TcpNoFlow);
    }

    [Fact]
    public void FinWithoutAckForUnknownFlow_IsAnsweredWithRstAckCoveringDataAndFin()
    {
        using var ctx = new StackTestContext();

        var reply = Assert.Single(ctx.ExchangeEthernet(Tcp4Frame(GuestIp, GatewayIp, 40002, 8080, 500, 0, TcpFlags.Fin, "abc"u8)));

        var (_, tcp) = ParseTcp(reply);
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, tcp.Flags);
        Assert.Equal(0u, tcp.SequenceNumber);
        Assert.Equal(500u + 3 + 1, tcp.AcknowledgmentNumber);
    }

    [Fact]
    public void RstForUnknownFlow_IsNeverAnswered()
    {
        using var ctx = new StackTestContext();
        Assert.Empty(ctx.Exchange(Tcp4Frame(GuestIp, GatewayIp, 40003, 8080, 500, 0, TcpFlags.Rst)));
        Assert.Equal(1, ctx.Counters.TcpNoFlow);
    }

    [Fact]
    public void SynToGatewayWithHostLoopbackDisabled_IsRefusedWithIcmpNotReset()
    {
        // slirp4netns's answer is "network unreachable" (see NetworkStackUnreachableTests).
        using var ctx = new StackTestContext(configure: o => o.DisableHostLoopback = true);

        var reply = Assert.Single(ctx.ExchangeEthernet(Tcp4Frame(GuestIp, GatewayIp, 40004, 22, 77, 0, TcpFlags.Syn)));

        Assert.True(Ipv4Packet.TryCreate(reply.AsSpan(14), out var ip));
        Assert.Equal(IpProtocol.Icmp, ip.Protocol);
        Assert.Equal(3, ip.Payload[0]);
    }

    internal static ((uint Source, uint Destination) Ip, TcpRepr Tcp) ParseTcp(byte[] ethernet)
    {
        Assert.True(Ipv4Packet.TryCreate(ethernet.AsSpan(14), out var ip));
        Assert.Equal(IpProtocol.Tcp, ip.Protocol);
        Assert.True(TcpPacket.TryCreate(ip.Payload, out var tcp));
        Assert.True(TcpRepr.TryParse(tcp, out var repr));
        return ((ip.Source.Value, ip.Destination.Value), repr);
    }
}
