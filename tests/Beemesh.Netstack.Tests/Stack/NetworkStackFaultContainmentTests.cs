using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// An exception while the stack serves one flow resets that flow only: the guest gets a RST, the
/// host side is closed, <c>handler_faults_total</c> moves, and every other flow keeps its bytes.
/// The faults come from the sidecar's hooks (<see cref="IFlowRedirector"/>, <see cref="IFlowAcceptor"/>),
/// which run inside the flow's handlers. Socket readiness is real: the tests pump in bounded loops
/// with a short epoll wait, never sleep.
/// </summary>
public sealed class NetworkStackFaultContainmentTests
{
    private const int MaxPumps = 500; // × 10 ms epoll wait: bounds a hang, normally a few rounds
    private const uint Redirected = 0xC000_0201; // 192.0.2.1, redirected by the hook to the listener
    private const uint Mesh = 0x0AC8_0005; // 10.200.0.5, claimed in process

    [Fact]
    public void A_hook_throwing_inside_one_flows_readiness_handler_resets_that_flow_and_the_others_carry_on()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var ctx = new StackTestContext();
        ctx.Stack.FlowRedirector = new ThrowingRedirector(new IPEndPoint(IPAddress.Loopback, port));

        // Flow A: an ordinary guest connection to host loopback.
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41000, port, 1000, 0, TcpFlags.Syn, options: MssOption));
        var synAckA = PumpUntil(ctx, t => t.DestinationPort == 41000 && (t.Flags & TcpFlags.Syn) != 0);
        uint nextA = synAckA.SequenceNumber + 1;
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41000, port, 1001, nextA, TcpFlags.Ack));
        using var hostA = listener.AcceptSocket();

        // Flow B: redirected to the same listener; the hook throws once the host connect completes,
        // inside B's readiness handler.
        ctx.Inject(Tcp4Frame(GuestIp, Redirected, 42000, 9999, 5000, 0, TcpFlags.Syn, options: MssOption));
        var rst = PumpUntil(ctx, t => t.DestinationPort == 42000);
        using var hostB = listener.AcceptSocket();

        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(5001u, rst.AcknowledgmentNumber);
        Assert.Equal(1, ctx.Counters.HandlerFaults);
        Assert.Equal(1, ctx.Stack.TcpFlowCount);
        Assert.Contains("beemesh_netstack_handler_faults_total 1", ctx.Counters.ToPrometheus());

        // B's host socket was closed with a reset.
        Assert.True(hostB.Poll(5_000_000, SelectMode.SelectRead));
        var e = Assert.Throws<SocketException>(() => hostB.Receive(new byte[1]));
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);

        // A still carries bytes both ways, unharmed.
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, 41000, port, 1001, nextA, TcpFlags.Ack | TcpFlags.Psh, "after"u8));
        for (int i = 0; i < MaxPumps && hostA.Available < 5; i++)
        {
            ctx.Stack.PumpOnce(10);
        }

        var received = new byte[16];
        Assert.Equal(5, hostA.Receive(received));
        Assert.Equal("after"u8.ToArray(), received[..5]);
        hostA.Send("still"u8);
        var data = PumpUntil(ctx, t => t.DestinationPort == 41000 && t.PayloadLength > 0, out byte[] payload);
        Assert.Equal(nextA, data.SequenceNumber);
        Assert.Equal("still"u8.ToArray(), payload);
        Assert.Equal(1, ctx.Counters.HandlerFaults);
        ctx.AssertStillAnswersArp();
    }

    [Fact]
    public async Task A_hook_throwing_while_a_guest_syn_is_handled_resets_that_flow_and_other_flows_keep_their_bytes()
    {
        using var ctx = new StackTestContext();
        var acceptor = new ThrowingAcceptor();
        ctx.Stack.FlowAcceptor = acceptor;

        // Flow A is accepted in process and established.
        var synAckA = SingleFor(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 41000, 8080, 1000, 0, TcpFlags.Syn, options: MssOption)), 41000);
        uint nextA = synAckA.SequenceNumber + 1;
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 41000, 8080, 1001, nextA, TcpFlags.Ack));
        var streamA = Assert.Single(acceptor.Accepted);

        // Flow B: the acceptor throws after taking the stream. The guest sees the SYN-ACK, then a RST.
        acceptor.Throw = true;
        var framesB = Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 42000, 8080, 5000, 0, TcpFlags.Syn, options: MssOption)))
            .Where(s => s.DestinationPort == 42000).ToList();
        Assert.Equal(2, framesB.Count);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, framesB[0].Flags);
        Assert.Equal(TcpFlags.Rst, framesB[1].Flags & TcpFlags.Rst);
        Assert.Equal(framesB[0].SequenceNumber + 1, framesB[1].SequenceNumber);
        Assert.Equal(1, ctx.Counters.HandlerFaults);
        Assert.Equal(1, ctx.Stack.TcpFlowCount);

        // B's stream failed as a reset.
        var streamB = acceptor.Accepted[1];
        await Assert.ThrowsAsync<IOException>(async () => _ = await streamB.ReadAsync(new byte[1]));

        // A's bytes are intact both ways.
        var acks = Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 41000, 8080, 1001, nextA, TcpFlags.Ack | TcpFlags.Psh, "hello"u8)));
        Assert.Equal(1006u, Assert.Single(acks).AcknowledgmentNumber);
        var buffer = new byte[16];
        Assert.Equal(5, await streamA.ReadAsync(buffer));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
        await streamA.WriteAsync("world"u8.ToArray());
        ctx.Stack.PumpOnce();
        var data = SingleFor(ctx.Link.TakeAll(), 41000);
        Assert.Equal(nextA, data.SequenceNumber);

        // The 4-tuple B used is free again: a new SYN opens a fresh flow.
        acceptor.Throw = false;
        var again = SingleFor(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 42000, 8080, 9000, 0, TcpFlags.Syn, options: MssOption)), 42000);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, again.Flags);
        Assert.Equal(9001u, again.AcknowledgmentNumber);
    }

    [Fact]
    public void A_hook_throwing_before_any_flow_exists_refuses_the_syn()
    {
        using var ctx = new StackTestContext();
        ctx.Stack.FlowAcceptor = new ThrowingAcceptor { ThrowInClaims = true };

        var rst = SingleFor(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, 43000, 8080, 700, 0, TcpFlags.Syn)), 43000);

        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(701u, rst.AcknowledgmentNumber);
        Assert.Equal(1, ctx.Counters.HandlerFaults);
        Assert.Equal(0, ctx.Stack.TcpFlowCount);
        ctx.AssertStillAnswersArp();
    }

    [Fact]
    public void A_link_that_fails_ends_the_stack_instead_of_being_contained()
    {
        var link = new FailingLink(); // the stack disposes it
        using var stack = new Beemesh.Netstack.Stack.NetworkStack(new Beemesh.Netstack.Stack.StackOptions(), link);

        // Run on this thread: the link's fd is readable at once and its read throws.
        var e = Assert.Throws<IOException>(stack.Run);

        Assert.Equal("the tap is gone", e.Message);
        Assert.Equal(0, stack.Counters.HandlerFaults);
    }

    private static TcpRepr SingleFor(List<byte[]> frames, ushort guestPort) =>
        Assert.Single(Segments(frames), s => s.DestinationPort == guestPort);

    private static List<TcpRepr> Segments(List<byte[]> frames)
    {
        var result = new List<TcpRepr>();
        foreach (var frame in frames)
        {
            EmittedFrameChecker.AssertWellFormed(frame, vnet: false);
            if (Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) && ip.Protocol == IpProtocol.Tcp)
            {
                result.Add(NetworkStackTcpResetTests.ParseTcp(frame).Tcp);
            }
        }

        return result;
    }

    private static TcpRepr PumpUntil(StackTestContext ctx, Func<TcpRepr, bool> match) => PumpUntil(ctx, match, out _);

    private static TcpRepr PumpUntil(StackTestContext ctx, Func<TcpRepr, bool> match, out byte[] payload)
    {
        for (int i = 0; i < MaxPumps; i++)
        {
            ctx.Stack.PumpOnce(10);
            foreach (var frame in ctx.Link.TakeAll())
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

        throw new Xunit.Sdk.XunitException("the stack sent no matching segment");
    }

    /// <summary>A link whose fd (an eventfd with a count of 1) is always readable and whose read throws.</summary>
    private sealed class FailingLink : Beemesh.Netstack.Link.ILinkDevice
    {
        public int Fd { get; } = Beemesh.Netstack.Interop.Sys.eventfd(1, Beemesh.Netstack.Interop.Sys.EFD_NONBLOCK | Beemesh.Netstack.Interop.Sys.EFD_CLOEXEC);

        public bool VnetHeader => false;

        public bool Offload => false;

        public int Read(Span<byte> buffer) => throw new IOException("the tap is gone");

        public bool Write(ReadOnlySpan<byte> frame) => true;

        private bool _closed;

        public void Dispose()
        {
            if (!_closed)
            {
                _closed = true;
                Beemesh.Netstack.Interop.Sys.close(Fd);
            }
        }
    }

    /// <summary>Redirects 192.0.2.1:9999 to the listener, then throws when told the connection is up.</summary>
    private sealed class ThrowingRedirector(IPEndPoint target) : IFlowRedirector
    {
        public bool TryRedirect(IPEndPoint destination, out IPEndPoint hostEndpoint)
        {
            hostEndpoint = target;
            return destination.Port == 9999;
        }

        public void Connected(IPEndPoint destination, IPEndPoint localEndpoint) =>
            throw new InvalidOperationException("the redirector's books are corrupt");
    }

    /// <summary>Claims 10.200.0.5; takes each stream, then throws when <see cref="Throw"/> is set.</summary>
    private sealed class ThrowingAcceptor : IFlowAcceptor
    {
        public List<GuestFlowStream> Accepted { get; } = [];

        public bool Throw { get; set; }

        public bool ThrowInClaims { get; init; }

        public bool Claims(IPEndPoint destination) =>
            ThrowInClaims ? throw new InvalidOperationException("claims") : destination.Address.Equals(IPAddress.Parse("10.200.0.5"));

        public void Accept(IPEndPoint destination, GuestFlowStream stream)
        {
            Accepted.Add(stream);
            if (Throw)
            {
                throw new InvalidOperationException("accept");
            }
        }
    }
}
