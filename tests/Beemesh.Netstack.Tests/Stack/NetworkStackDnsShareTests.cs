using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A guest flooding the DNS address from ever new source ports must not starve a normal query, nor
/// push out its other UDP mappings: DNS mappings have their own share, and past it the least recently
/// active one goes. The upstream is a loopback socket the test owns; readiness is real, so the tests
/// pump in bounded loops with a short epoll wait.
/// </summary>
public class NetworkStackDnsShareTests
{
    private const int MaxPumps = 500;

    [Fact]
    public void QueryDuringAFloodFromNewPorts_ReachesTheUpstream_AndItsAnswerTheGuest()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var ctx = new StackTestContext(configure: o =>
        {
            o.DnsUpstream = (IPEndPoint)upstream.Client.LocalEndPoint!;
            o.MaxDnsFlows = 8;
            o.MaxUdpFlows = 16;
        });

        for (ushort port = 20000; port < 20100; port++)
        {
            ctx.Inject(Udp4Frame(GuestIp, DnsIp, port, 53, Query(0x1111)));
        }

        ctx.Inject(Udp4Frame(GuestIp, DnsIp, 33333, 53, Query(0xABCD)));

        // The upstream sees the good query among the flood, and answers it.
        IPEndPoint? from = null;
        byte[]? good = null;
        for (int i = 0; i < MaxPumps && good is null; i++)
        {
            ctx.Stack.PumpOnce(10); // a pump reads one batch of frames
            while (good is null && upstream.Available > 0)
            {
                byte[] q = upstream.Receive(ref from);
                if (BinaryPrimitives.ReadUInt16BigEndian(q) == 0xABCD)
                {
                    good = q;
                }
            }
        }

        Assert.NotNull(good);
        Assert.True(ctx.Stack.UdpFlowCount <= 8, $"{ctx.Stack.UdpFlowCount} DNS mappings");

        upstream.Send(good, good.Length, from);
        byte[] answer = PumpUntilUdpTo(ctx, 33333);
        Assert.Equal(good, answer);
        Assert.True(ctx.Counters.UdpFlowsEvicted >= 93, $"evicted {ctx.Counters.UdpFlowsEvicted}");
    }

    [Fact]
    public void DnsFlood_NeverEvictsOtherMappings()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var echo = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        ushort echoPort = (ushort)((IPEndPoint)echo.Client.LocalEndPoint!).Port;
        using var ctx = new StackTestContext(configure: o =>
        {
            o.DnsUpstream = (IPEndPoint)upstream.Client.LocalEndPoint!;
            o.MaxDnsFlows = 8;
            o.MaxUdpFlows = 16;
        });
        ctx.Exchange(Udp4Frame(GuestIp, GatewayIp, 40000, echoPort, "first"u8));
        int before = ctx.Stack.UdpFlowCount;

        for (ushort port = 20000; port < 20100; port++)
        {
            ctx.Exchange(Udp4Frame(GuestIp, DnsIp, port, 53, Query(0x1111)));
        }

        // The mapping to the echo socket is still there: its host socket still brings replies in.
        IPEndPoint? client = null;
        echo.Client.ReceiveTimeout = 5000;
        echo.Receive(ref client);
        echo.Send("back"u8.ToArray(), 4, client);
        Assert.Equal("back"u8.ToArray(), PumpUntilUdpTo(ctx, 40000));
        Assert.Equal(1, before);
    }

    [Fact]
    public void IdleDnsMappings_AreForgottenAfterTheDnsTimeout()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var ctx = new StackTestContext(configure: o => o.DnsUpstream = (IPEndPoint)upstream.Client.LocalEndPoint!);
        for (ushort port = 20000; port < 20010; port++)
        {
            ctx.Exchange(Udp4Frame(GuestIp, DnsIp, port, 53, Query(0x2222)));
        }

        Assert.Equal(10, ctx.Stack.UdpFlowCount);
        ctx.Time.Advance(ctx.Options.DnsUdpTimeout - TimeSpan.FromSeconds(1));
        ctx.Stack.PumpOnce(0);
        Assert.Equal(10, ctx.Stack.UdpFlowCount);
        ctx.Time.Advance(TimeSpan.FromSeconds(1));
        ctx.Stack.PumpOnce(0);
        Assert.Equal(0, ctx.Stack.UdpFlowCount);
    }

    [Fact]
    public void FloodFromOnePort_IsHeldToItsRate_WhileAnotherPortIsServed()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var ctx = new StackTestContext(configure: o =>
        {
            o.DnsUpstream = (IPEndPoint)upstream.Client.LocalEndPoint!;
            o.DnsQueriesPerSecondPerFlow = 10;
        });

        // 50 queries from one port at one instant: only the burst of 10 goes up.
        for (int i = 0; i < 50; i++)
        {
            ctx.Exchange(Udp4Frame(GuestIp, DnsIp, 20000, 53, Query(0x1111)));
        }

        ctx.Exchange(Udp4Frame(GuestIp, DnsIp, 33333, 53, Query(0xABCD)));
        var seen = new List<ushort>();
        for (int i = 0; i < MaxPumps && !seen.Contains(0xABCD); i++)
        {
            ctx.Stack.PumpOnce(10);
            while (upstream.Available > 0)
            {
                IPEndPoint? from = null;
                seen.Add(BinaryPrimitives.ReadUInt16BigEndian(upstream.Receive(ref from)));
            }
        }

        Assert.Contains((ushort)0xABCD, seen);
        Assert.Equal(10, seen.Count(id => id == 0x1111));
        Assert.Equal(40, ctx.Counters.DnsQueriesDropped);

        // A second later the port may send again.
        ctx.Time.Advance(TimeSpan.FromSeconds(1));
        ctx.Exchange(Udp4Frame(GuestIp, DnsIp, 20000, 53, Query(0x1111)));
        Assert.Equal(40, ctx.Counters.DnsQueriesDropped);
    }

    private static byte[] Query(ushort id)
    {
        byte[] q = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0, 0, 1, 0, 1];
        BinaryPrimitives.WriteUInt16BigEndian(q, id);
        return q;
    }

    private static byte[] PumpUntilUdpTo(StackTestContext ctx, ushort guestPort)
    {
        for (int i = 0; i < MaxPumps; i++)
        {
            ctx.Stack.PumpOnce(10);
            while (ctx.Link.TryTake(out var frame))
            {
                if (Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) && ip.Protocol == IpProtocol.Udp
                    && UdpPacket.TryCreate(ip.Payload, out var udp) && udp.DestinationPort == guestPort)
                {
                    return udp.Payload.ToArray();
                }
            }
        }

        throw new Xunit.Sdk.XunitException($"nothing reached guest port {guestPort}");
    }
}
