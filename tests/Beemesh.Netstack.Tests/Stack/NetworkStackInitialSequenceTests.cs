using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// Every way the stack opens a TCP connection toward the guest takes its ISN from the RFC 6528
/// generator (the stack's clock and the 4-tuple under its key), none from <see cref="Random"/>.
/// </summary>
public sealed class NetworkStackInitialSequenceTests
{
    private const uint Mesh = 0x0AC8_0005; // 10.200.0.5, claimed in process
    private const int MaxPumps = 500; // × 10 ms epoll wait: bounds a hang, normally a few rounds

    private static readonly InitialSequenceNumbers Expected = new(StackTestContext.IsnKey);

    [Fact]
    public void Outbound_host_flows_answer_with_the_rfc6528_isn()
    {
        var random = new CountingRandom();
        using var ctx = new StackTestContext(random: random);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;

        ctx.Time.Advance(TimeSpan.FromSeconds(3));
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41000, port, 1000, 0, TcpFlags.Syn, options: MssOption));
        var synAck = PumpUntilSyn(ctx);

        Assert.Equal(Isn(GatewayIp, port, 41000, ctx.Stack.Now), synAck.SequenceNumber);
        Assert.Equal(0, random.Calls);
    }

    [Fact]
    public void In_process_flows_both_ways_and_attached_host_connections_use_the_rfc6528_isn()
    {
        var random = new CountingRandom();
        using var ctx = new StackTestContext(random: random);
        ctx.Stack.FlowAcceptor = new ClaimAll();
        ctx.AssertStillAnswersArp(); // the guest's MAC is known

        // A guest SYN claimed in process.
        var synAck = SingleTcp(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 41000, 8080, 1000, 0, TcpFlags.Syn, options: MssOption)));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(Isn(Mesh, 8080, 41000, ctx.Stack.Now), synAck.SequenceNumber);

        // An in-process stream into the guest, a second later: the clock part moved by 250,000.
        ctx.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(ctx.Stack.AttachGuestStream(IPAddress.Parse("10.200.0.9"), 50000, 7000));
        var syn = SingleTcp(ctx.Link.TakeAll());
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.Equal(Isn(0x0AC8_0009, 50000, 7000, ctx.Stack.Now), syn.SequenceNumber);

        // A host connection handed to the stack (the sidecar's inbound path).
        ctx.Time.Advance(TimeSpan.FromSeconds(1));
        (Socket ours, int theirs) = SocketPair();
        using (ours)
        {
            Assert.True(ctx.Stack.AttachGuestConnection(theirs, IPAddress.Parse("10.200.0.9"), 50001, 7000));
            var hostSyn = SingleTcp(ctx.Link.TakeAll());
            Assert.Equal(Isn(0x0AC8_0009, 50001, 7000, ctx.Stack.Now), hostSyn.SequenceNumber);

            // The same 4-tuple two seconds on starts 500,000 higher.
            Assert.Equal(unchecked(Isn(0x0AC8_0009, 50001, 7000, ctx.Stack.Now - TimeSpan.FromSeconds(2)) + 500_000), hostSyn.SequenceNumber);
        }

        Assert.Equal(0, random.Calls);
    }

    private static uint Isn(uint remote, ushort remotePort, ushort guestPort, TimeSpan now) =>
        Expected.Next(IpAddr.FromV4(remote), remotePort, IpAddr.FromV4(GuestIp), guestPort, now);

    private static TcpRepr SingleTcp(List<byte[]> frames) => NetworkStackTcpResetTests.ParseTcp(Assert.Single(frames)).Tcp;

    private static TcpRepr PumpUntilSyn(StackTestContext ctx)
    {
        for (int i = 0; i < MaxPumps; i++)
        {
            ctx.Stack.PumpOnce(10);
            foreach (var frame in ctx.Link.TakeAll())
            {
                var (_, tcp) = NetworkStackTcpResetTests.ParseTcp(frame);
                if ((tcp.Flags & TcpFlags.Syn) != 0)
                {
                    return tcp;
                }
            }
        }

        throw new Xunit.Sdk.XunitException("no SYN-ACK from the stack");
    }

    /// <summary>A connected loopback pair; the second end's fd is handed over.</summary>
    private static (Socket Ours, int Theirs) SocketPair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var ours = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        ours.Connect(listener.LocalEndPoint!);
        Socket theirs = listener.Accept();
        int fd = (int)theirs.Handle;
        theirs.SafeHandle.SetHandleAsInvalid();
        return (ours, fd);
    }

    private sealed class ClaimAll : IFlowAcceptor
    {
        public bool Claims(IPEndPoint destination) => destination.Address.Equals(IPAddress.Parse("10.200.0.5"));

        public void Accept(IPEndPoint destination, GuestFlowStream stream)
        {
        }
    }

    /// <summary>A <see cref="Random"/> that counts the draws made from it.</summary>
    private sealed class CountingRandom : Random
    {
        public int Calls { get; private set; }

        public override int Next()
        {
            Calls++;
            return base.Next();
        }

        public override int Next(int maxValue)
        {
            Calls++;
            return base.Next(maxValue);
        }

        public override int Next(int minValue, int maxValue)
        {
            Calls++;
            return base.Next(minValue, maxValue);
        }

        public override long NextInt64()
        {
            Calls++;
            return base.NextInt64();
        }

        public override void NextBytes(byte[] buffer)
        {
            Calls++;
            base.NextBytes(buffer);
        }

        public override void NextBytes(Span<byte> buffer)
        {
            Calls++;
            base.NextBytes(buffer);
        }
    }
}
