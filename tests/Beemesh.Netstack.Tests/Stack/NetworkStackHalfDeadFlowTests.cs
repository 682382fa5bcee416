using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A guest socket can vanish without a word (its FIN-WAIT-2 timed out, its namespace died, a frame was
/// lost in a burst); the flow would then pin its host socket as long as the host peer keeps it open.
/// Idle flows are probed with keepalives: a vanished socket answers RST (or nothing), and the flow and
/// its host socket are closed; a live one answers ACK and stays. Time is fake; socket readiness is real,
/// so the tests pump in bounded loops with a short epoll wait.
/// </summary>
public class NetworkStackHalfDeadFlowTests
{
    private const int MaxPumps = 500;
    private const ushort GuestPort = 41500;

    [Fact]
    public void IdleFlow_IsProbed_AndAGuestRstClosesTheHostSocket()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var ctx = new StackTestContext();
        (ushort port, _, uint ourNext) = Establish(ctx, listener);
        using Socket host = listener.AcceptSocket();

        ctx.Time.Advance(ctx.Options.TcpKeepAliveIdle!.Value);
        TcpRepr probe = PumpUntilTcp(ctx, t => t.PayloadLength == 0 && (t.Flags & TcpFlags.Ack) != 0);

        // RFC 1122 §4.2.3.6: the probe carries SND.UNA - 1, so any live peer must answer it.
        Assert.Equal(ourNext - 1, probe.SequenceNumber);
        // The guest's kernel has no socket for it any more: RST with the probe's acknowledgment as sequence.
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, probe.AcknowledgmentNumber, 0, TcpFlags.Rst));
        AssertHostSocketEnds(ctx, host);
        Assert.Equal(0, ctx.Stack.TcpFlowCount);
    }

    [Fact]
    public void IdleFlow_WhoseGuestNeverAnswers_IsResetAfterTheLastProbe()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var ctx = new StackTestContext();
        Establish(ctx, listener);
        using Socket host = listener.AcceptSocket();

        ctx.Time.Advance(ctx.Options.TcpKeepAliveIdle!.Value);
        for (int probe = 0; probe < ctx.Options.TcpKeepAliveProbes; probe++)
        {
            PumpUntilTcp(ctx, t => t.PayloadLength == 0 && (t.Flags & TcpFlags.Rst) == 0);
            ctx.Time.Advance(ctx.Options.TcpKeepAliveInterval);
        }

        TcpRepr reset = PumpUntilTcp(ctx, t => (t.Flags & TcpFlags.Rst) != 0);
        Assert.Equal(TcpFlags.Rst, reset.Flags & TcpFlags.Rst);
        AssertHostSocketEnds(ctx, host);
        Assert.Equal(0, ctx.Stack.TcpFlowCount);
    }

    [Fact]
    public void IdleFlow_WhoseGuestAnswers_StaysOpen()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var ctx = new StackTestContext();
        (ushort port, uint guestNext, uint ourNext) = Establish(ctx, listener);
        using Socket host = listener.AcceptSocket();

        for (int round = 0; round < 5; round++)
        {
            ctx.Time.Advance(ctx.Options.TcpKeepAliveIdle!.Value);
            PumpUntilTcp(ctx, t => t.PayloadLength == 0 && (t.Flags & TcpFlags.Rst) == 0);
            ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, guestNext, ourNext, TcpFlags.Ack));
            ctx.Stack.PumpOnce(0);
        }

        Assert.Equal(1, ctx.Stack.TcpFlowCount);
        // Still a working connection: host bytes reach the guest.
        host.Send("still here"u8);
        PumpUntilTcp(ctx, t => t.PayloadLength == 10);
    }

    [Fact]
    public void FlowClosedBeforeItsKeepalive_LeavesNothingInTheTimerHeap()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var ctx = new StackTestContext();
        (ushort port, uint guestNext, _) = Establish(ctx, listener);
        using Socket host = listener.AcceptSocket();
        Assert.True(ctx.Stack.Loop.PendingTimers > 0, "an idle established flow waits for its keepalive");

        // The guest resets long before the keepalive is due: the flow goes, and so must its timer,
        // or the heap would keep the dead flow reachable for the whole idle period.
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, guestNext, 0, TcpFlags.Rst));
        AssertHostSocketEnds(ctx, host);
        Assert.Equal(0, ctx.Stack.TcpFlowCount);
        Assert.Equal(0, ctx.Stack.Loop.PendingTimers);
    }

    private static (ushort Port, uint GuestNext, uint OurNext) Establish(StackTestContext ctx, TcpListener listener)
    {
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, 1000, 0, TcpFlags.Syn, options: MssOption));
        TcpRepr synAck = PumpUntilTcp(ctx, t => (t.Flags & TcpFlags.Syn) != 0);
        uint ourNext = synAck.SequenceNumber + 1;
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, 1001, ourNext, TcpFlags.Ack));
        ctx.Stack.PumpOnce(0);
        ctx.Link.TakeAll();
        return (port, 1001, ourNext);
    }

    private static void AssertHostSocketEnds(StackTestContext ctx, Socket host)
    {
        host.Blocking = false;
        var buffer = new byte[16];
        for (int i = 0; i < MaxPumps; i++)
        {
            ctx.Stack.PumpOnce(10);
            try
            {
                if (host.Receive(buffer) == 0)
                {
                    return; // orderly end
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
            }
        }

        Assert.Fail("the host socket is still open");
    }

    private static TcpRepr PumpUntilTcp(StackTestContext ctx, Func<TcpRepr, bool> match)
    {
        for (int i = 0; i < MaxPumps; i++)
        {
            ctx.Stack.PumpOnce(10);
            while (ctx.Link.TryTake(out var frame))
            {
                if (!Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) || ip.Protocol != IpProtocol.Tcp)
                {
                    continue;
                }

                Assert.True(TcpPacket.TryCreate(ip.Payload, out var tcp));
                Assert.True(TcpRepr.TryParse(tcp, out var repr));
                if (match(repr))
                {
                    return repr;
                }
            }
        }

        throw new Xunit.Sdk.XunitException("no matching segment from the stack");
    }
}
