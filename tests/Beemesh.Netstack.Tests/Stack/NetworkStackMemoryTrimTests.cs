using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// After a burst of flows ends the stack gives memory back once, a settle time later (fake time).
/// Host sockets are real, so the tests pump in bounded loops with a short epoll wait.
/// </summary>
public class NetworkStackMemoryTrimTests
{
    private const int MaxPumps = 500;

    [Fact]
    public void WhenABurstOfFlowsHasGone_TheStackTrimsOnceAfterTheSettleTime()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var ctx = new StackTestContext(configure: o => o.MemoryTrimMinReleasedFlows = 3);
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;

        var guestNext = new List<(ushort Port, uint Seq)>();
        for (ushort guestPort = 42000; guestPort < 42004; guestPort++)
        {
            guestNext.Add((guestPort, Open(ctx, port, guestPort)));
        }

        Assert.Equal(4, ctx.Stack.TcpFlowCount);
        foreach ((ushort guestPort, uint seq) in guestNext)
        {
            ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, guestPort, port, seq, 0, TcpFlags.Rst));
        }

        ctx.Stack.PumpOnce(0);
        Assert.Equal(0, ctx.Stack.TcpFlowCount);
        Assert.Equal(0, ctx.Counters.MemoryTrims); // not at once: the burst may go on

        ctx.Time.Advance(TimeSpan.FromSeconds(2));
        ctx.Stack.PumpOnce(0);
        Assert.Equal(1, ctx.Counters.MemoryTrims);
        Assert.Contains("beemesh_netstack_memory_trims_total 1", ctx.Counters.ToPrometheus(), StringComparison.Ordinal);

        ctx.Time.Advance(TimeSpan.FromMinutes(1));
        ctx.Stack.PumpOnce(0);
        Assert.Equal(1, ctx.Counters.MemoryTrims); // nothing new to give back
        Assert.Equal(0, ctx.Stack.Loop.PendingTimers);
    }

    [Fact]
    public void Disabled_NeverTrims()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var ctx = new StackTestContext(configure: o => o.MemoryTrimMinReleasedFlows = 0);
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        uint seq = Open(ctx, port, 42100);
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 42100, port, seq, 0, TcpFlags.Rst));
        ctx.Stack.PumpOnce(0);
        ctx.Time.Advance(TimeSpan.FromMinutes(1));
        ctx.Stack.PumpOnce(0);
        Assert.Equal(0, ctx.Counters.MemoryTrims);
    }

    [Fact]
    public void Flows_ShareTheirConnectionOptions_UntilTheSettingsChange()
    {
        using var ctx = new StackTestContext();
        var v4 = ctx.Stack.CreateTcpOptions(v4: true);
        Assert.Same(v4, ctx.Stack.CreateTcpOptions(v4: true));
        var v6 = ctx.Stack.CreateTcpOptions(v4: false);
        Assert.NotSame(v4, v6);
        Assert.Equal(v4.Mss - 20, v6.Mss);

        ctx.Options.TcpKeepAliveIdle = TimeSpan.FromSeconds(7);
        var changed = ctx.Stack.CreateTcpOptions(v4: true);
        Assert.NotSame(v4, changed);
        Assert.Equal(TimeSpan.FromSeconds(7), changed.KeepAliveIdle);
    }

    /// <summary>Handshake from the guest; returns the guest's next sequence number.</summary>
    private static uint Open(StackTestContext ctx, ushort port, ushort guestPort)
    {
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, guestPort, port, 1000, 0, TcpFlags.Syn, options: MssOption));
        uint ourNext = 0;
        for (int i = 0; i < MaxPumps && ourNext == 0; i++)
        {
            ctx.Stack.PumpOnce(10);
            while (ctx.Link.TryTake(out var frame))
            {
                if (Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) && ip.Protocol == IpProtocol.Tcp
                    && TcpPacket.TryCreate(ip.Payload, out var tcp) && TcpRepr.TryParse(tcp, out var repr)
                    && (repr.Flags & TcpFlags.Syn) != 0 && repr.DestinationPort == guestPort)
                {
                    ourNext = repr.SequenceNumber + 1;
                }
            }
        }

        Assert.NotEqual(0u, ourNext);
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, guestPort, port, 1001, ourNext, TcpFlags.Ack));
        ctx.Stack.PumpOnce(0);
        ctx.Link.TakeAll();
        return 1001;
    }
}
