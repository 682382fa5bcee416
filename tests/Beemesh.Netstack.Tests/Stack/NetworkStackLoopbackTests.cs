using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// Guest connections to the gateway reach host loopback through real sockets. Socket readiness
/// is real here, so the tests pump in bounded loops with a short epoll wait, never sleep.
/// </summary>
public class NetworkStackLoopbackTests
{
    private const int MaxPumps = 500; // × 10 ms epoll wait: a generous bound, normally a few rounds

    [Fact]
    public void SynToGateway_ConnectsToHostLoopback_AndCarriesDataBothWays()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var ctx = new StackTestContext();

        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41000, port, 1000, 0, TcpFlags.Syn, options: MssOption));
        var synAck = PumpUntilTcp(ctx, t => (t.Flags & TcpFlags.Syn) != 0);

        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst));
        Assert.Equal(1001u, synAck.AcknowledgmentNumber);
        Assert.Equal(port, synAck.SourcePort);
        Assert.Equal((ushort)41000, synAck.DestinationPort);
        Assert.Equal(1, ctx.Counters.TcpFlowsOpened);
        using var host = listener.AcceptSocket();

        // Guest → host: ACK the SYN-ACK with data; the bytes must come out of the host socket.
        uint ourNext = synAck.SequenceNumber + 1;
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41000, port, 1001, ourNext, TcpFlags.Ack | TcpFlags.Psh, "hello"u8));
        for (int i = 0; i < MaxPumps && host.Available < 5; i++)
        {
            ctx.Stack.PumpOnce(10);
        }

        var received = new byte[16];
        Assert.Equal(5, host.Receive(received));
        Assert.Equal("hello"u8.ToArray(), received[..5]);

        // Host → guest: the stack segments what the host wrote.
        host.Send("world"u8);
        var data = PumpUntilTcp(ctx, t => t.PayloadLength > 0, out byte[] payload);
        Assert.Equal(ourNext, data.SequenceNumber);
        Assert.Equal("world"u8.ToArray(), payload);
        Assert.Equal(1006u, data.AcknowledgmentNumber);
    }

    [Fact]
    public async Task ServerThatAcceptsAndClosesAtOnce_GuestGetsSynAckThenFin()
    {
        // A host server that accepts and closes at once: the guest still gets the SYN-ACK and then
        // a FIN. (When the EOF shares the connect's epoll edge the timing is the kernel's; the
        // connect-rate benchmark and the end-to-end suite exercise that case under load.)
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        var closer = Task.Run(() => listener.AcceptSocket().Close());
        using var ctx = new StackTestContext();

        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41002, port, 5000, 0, TcpFlags.Syn, options: MssOption));
        ctx.Stack.PumpOnce(0); // reads the SYN and starts the host connect
        await closer.WaitAsync(TimeSpan.FromSeconds(5));
        var synAck = PumpUntilTcp(ctx, t => (t.Flags & TcpFlags.Syn) != 0);
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41002, port, 5001, synAck.SequenceNumber + 1, TcpFlags.Ack));
        var fin = PumpUntilTcp(ctx, t => (t.Flags & TcpFlags.Fin) != 0);

        Assert.Equal(synAck.SequenceNumber + 1, fin.SequenceNumber);
        Assert.Equal(5001u, fin.AcknowledgmentNumber);
    }

    [Fact]
    public void SynToClosedLoopbackPort_IsAnsweredWithRstAck()
    {
        ushort port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = (ushort)((IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var ctx = new StackTestContext();
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41001, port, 7000, 0, TcpFlags.Syn));

        var rst = PumpUntilTcp(ctx, _ => true);

        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(7001u, rst.AcknowledgmentNumber);
        Assert.Equal(1, ctx.Counters.TcpConnectFailures);
    }

    private static TcpRepr PumpUntilTcp(StackTestContext ctx, Func<TcpRepr, bool> match) => PumpUntilTcp(ctx, match, out _);

    private static TcpRepr PumpUntilTcp(StackTestContext ctx, Func<TcpRepr, bool> match, out byte[] payload)
    {
        for (int i = 0; i < MaxPumps; i++)
        {
            ctx.Stack.PumpOnce(10);
            while (ctx.Link.TryTake(out var frame))
            {
                EmittedFrameChecker.AssertWellFormed(frame, vnet: false);
                if (!Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) || ip.Protocol != IpProtocol.Tcp)
                {
                    continue;
                }

                Assert.True(TcpPacket.TryCreate(ip.Payload, out var tcp));
                Assert.True(TcpRepr.TryParse(tcp, out var repr));
                if (match(repr))
                {
                    payload = tcp.Payload.ToArray();
                    return repr;
                }
            }
        }

        Assert.Fail("the stack sent no matching TCP segment");
        payload = [];
        return default;
    }
}
