using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// The sidecar's inbound path (<see cref="Beemesh.Netstack.Stack.NetworkStack.AttachGuestConnection"/>):
/// a guest port with nothing listening refuses at once, and that refusal reaches the host side at
/// once (a reset), with no retransmission timer in between.
/// </summary>
public sealed class NetworkStackGuestConnectTests
{
    private const uint Caller = 0x0AC8_0009; // 10.200.0.9, a caller's mesh address
    private const ushort CallerPort = 50000;
    private const ushort GuestPort = 7000;

    [Fact]
    public void A_guest_refusing_the_syn_resets_the_host_side_at_once()
    {
        using var ctx = new StackTestContext();
        ctx.AssertStillAnswersArp(); // the guest's MAC is known, as after any frame from it
        (Socket ours, int theirs) = SocketPair();
        using (ours)
        {
            Assert.True(ctx.Stack.AttachGuestConnection(theirs, IPAddress.Parse("10.200.0.9"), CallerPort, GuestPort));
            var syn = NetworkStackTcpResetTests.ParseTcp(Assert.Single(ctx.Link.TakeAll()));
            Assert.Equal(TcpFlags.Syn, syn.Tcp.Flags);
            Assert.Equal(Caller, syn.Ip.Source);
            Assert.Equal(GuestIp, syn.Ip.Destination);

            // What a Linux guest answers a SYN to a closed port (RFC 9293 §3.10.7.1): RST|ACK, ack = ISS + 1.
            ctx.Exchange(Tcp4Frame(GuestIp, Caller, GuestPort, CallerPort, 0, unchecked(syn.Tcp.SequenceNumber + 1), TcpFlags.Rst | TcpFlags.Ack));

            // No time has passed on the stack's clock: the host side already holds the reset.
            Assert.True(ours.Poll(0, SelectMode.SelectRead));
            var e = Assert.Throws<SocketException>(() => ours.Receive(new byte[1]));
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        }
    }

    [Fact]
    public void A_syn_the_guest_does_not_answer_is_sent_again_only_after_the_initial_rto()
    {
        using var ctx = new StackTestContext();
        ctx.AssertStillAnswersArp();
        (Socket ours, int theirs) = SocketPair();
        using (ours)
        {
            Assert.True(ctx.Stack.AttachGuestConnection(theirs, IPAddress.Parse("10.200.0.9"), CallerPort, GuestPort));
            var syn = NetworkStackTcpResetTests.ParseTcp(Assert.Single(ctx.Link.TakeAll()));

            ctx.Time.Advance(new TcpConnectionOptions().InitialRto - TimeSpan.FromMilliseconds(1));
            ctx.Stack.PumpOnce();
            Assert.Empty(ctx.Link.TakeAll());
            Assert.False(ours.Poll(0, SelectMode.SelectRead)); // still waiting, not failed

            ctx.Time.Advance(TimeSpan.FromMilliseconds(1));
            ctx.Stack.PumpOnce();
            var again = NetworkStackTcpResetTests.ParseTcp(Assert.Single(ctx.Link.TakeAll()));
            Assert.Equal(TcpFlags.Syn, again.Tcp.Flags);
            Assert.Equal(syn.Tcp.SequenceNumber, again.Tcp.SequenceNumber);
        }
    }

    /// <summary>A connected loopback pair, as the sidecar's connector makes; the second end's fd is handed over.</summary>
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
}
