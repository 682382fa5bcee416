using System.Net;
using System.Net.Sockets;
using Beemesh.Netstack.Forwarding;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// Guest flows attached to an in-process <see cref="GuestFlowStream"/> (the sidecar's mesh path,
/// no host socket): driven without a loop thread, the test plays the guest with frames and the
/// sidecar with the stream. The stream wakes the loop through its eventfd, so a wait for the other
/// side is a blocking epoll wait on that wake-up, never a sleep.
/// </summary>
public sealed class NetworkStackInProcessFlowTests
{
    private const uint Mesh = 0x0AC8_0005; // 10.200.0.5, a mesh address the acceptor claims
    private const ushort MeshPort = 8080;
    private const ushort GuestPort = 41000;
    private const int WakeWaitMs = 30_000; // only bounds a hang; a wake-up normally comes at once

    [Fact]
    public async Task A_claimed_syn_is_answered_in_process_and_bytes_flow_both_ways()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);

        var (destination, stream) = Assert.Single(acceptor.Accepted);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.200.0.5"), MeshPort), destination);
        Assert.Equal(1, ctx.Counters.TcpFlowsInProcess);

        // Guest → stream: acknowledged once the stream's buffer took the bytes.
        var acks = Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh, "hello"u8)));
        Assert.Equal(guestNext + 5, Assert.Single(acks).Tcp.AcknowledgmentNumber);
        guestNext += 5;
        Assert.Equal(5, stream.ReadableBytes);
        var buffer = new byte[64];
        Assert.Equal(5, await stream.ReadAsync(buffer));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);

        // Stream → guest: the write wakes the loop; the stack segments the bytes.
        await stream.WriteAsync("world"u8.ToArray());
        Assert.Equal(5, stream.QueuedBytes);
        ctx.Stack.PumpOnce();
        var data = Assert.Single(Segments(ctx.Link.TakeAll()));
        Assert.Equal(iss + 1, data.Tcp.SequenceNumber);
        Assert.Equal("world"u8.ToArray(), data.Payload);

        // The guest's ACK drops them from the stream's buffer.
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 6, TcpFlags.Ack));
        Assert.Equal(0, stream.QueuedBytes);
    }

    [Fact]
    public async Task Half_close_works_both_ways()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;

        // The guest's request and FIN: the stream reads the bytes, then the end.
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Fin, "request"u8));
        guestNext += 7 + 1;
        var buffer = new byte[64];
        Assert.Equal(7, await stream.ReadAsync(buffer));
        Assert.Equal(0, await stream.ReadAsync(buffer));

        // The reply still goes out after the guest's FIN, followed by ours.
        await stream.WriteAsync("response"u8.ToArray());
        stream.ShutdownWrite();
        ctx.Stack.PumpOnce();
        var sent = Segments(ctx.Link.TakeAll());
        Assert.Equal("response"u8.ToArray(), sent.SelectMany(s => s.Payload).ToArray());
        Assert.Contains(sent, s => (s.Tcp.Flags & TcpFlags.Fin) != 0);
        Assert.Equal(guestNext, sent[^1].Tcp.AcknowledgmentNumber);

        // The guest ACKs our FIN: the flow is done, the stream ends cleanly (no RST on dispose).
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1 + 8 + 1, TcpFlags.Ack));
        stream.Dispose();
        ctx.Stack.PumpOnce();
        Assert.DoesNotContain(Segments(ctx.Link.TakeAll()), s => (s.Tcp.Flags & TcpFlags.Rst) != 0);
    }

    [Fact]
    public async Task With_inline_read_completions_a_waiting_reader_runs_on_the_thread_that_delivers_the_bytes()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;
        stream.InlineReadCompletions = true;

        var buffer = new byte[64];
        ValueTask<int> read = stream.ReadAsync(buffer);
        Assert.False(read.IsCompleted);
        int ranOn = 0;
        WhenDone(read, () => ranOn = Environment.CurrentManagedThreadId);

        // The test plays the loop: the segment's delivery runs the reader before the exchange returns.
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh, "hello"u8));
        Assert.Equal(Environment.CurrentManagedThreadId, ranOn);
        Assert.Equal(5, await read);
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);

        // The guest's FIN completes the next read the same way.
        ValueTask<int> end = stream.ReadAsync(buffer);
        ranOn = 0;
        WhenDone(end, () => ranOn = Environment.CurrentManagedThreadId);
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext + 5, iss + 1, TcpFlags.Ack | TcpFlags.Fin));
        Assert.Equal(Environment.CurrentManagedThreadId, ranOn);
        Assert.Equal(0, await end);
    }

    /// <summary>Runs <paramref name="action"/> where the read completes, on no captured context.</summary>
    private static void WhenDone(ValueTask<int> read, Action action) => read.ConfigureAwait(false).GetAwaiter().OnCompleted(action);

    [Fact]
    public async Task A_guest_reset_fails_a_pending_read_with_connection_reset()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;

        ValueTask<int> read = stream.ReadAsync(new byte[16]);
        Assert.False(read.IsCompleted);
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Rst | TcpFlags.Ack));

        var e = await Assert.ThrowsAsync<IOException>(async () => await read);
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
        await Assert.ThrowsAsync<IOException>(async () => await stream.WriteAsync(new byte[1]));
    }

    [Fact]
    public void Abort_resets_the_guest_and_forgets_the_flow()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;

        stream.Abort();
        ctx.Stack.PumpOnce();
        var rst = Assert.Single(Segments(ctx.Link.TakeAll()));
        Assert.Equal(TcpFlags.Rst, rst.Tcp.Flags & TcpFlags.Rst);
        Assert.Equal(iss + 1, rst.Tcp.SequenceNumber);

        // The flow is gone: the guest's next segment finds none.
        long noFlow = ctx.Counters.TcpNoFlow;
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh, "late"u8));
        Assert.Equal(noFlow + 1, ctx.Counters.TcpNoFlow);
    }

    [Fact]
    public void Disposing_with_unread_bytes_resets_the_guest()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh, "unread"u8));

        stream.Dispose();
        ctx.Stack.PumpOnce();
        var sent = Assert.Single(Segments(ctx.Link.TakeAll()));
        Assert.Equal(TcpFlags.Rst, sent.Tcp.Flags & (TcpFlags.Rst | TcpFlags.Fin));
    }

    [Fact]
    public void Disposing_with_nothing_unread_sends_a_fin_and_later_guest_bytes_reset()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;

        stream.Dispose();
        ctx.Stack.PumpOnce();
        var fin = Assert.Single(Segments(ctx.Link.TakeAll()));
        Assert.Equal(TcpFlags.Fin, fin.Tcp.Flags & (TcpFlags.Rst | TcpFlags.Fin));

        var reply = Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 2, TcpFlags.Ack | TcpFlags.Psh, "too late"u8)));
        Assert.Contains(reply, s => (s.Tcp.Flags & TcpFlags.Rst) != 0);
    }

    [Fact]
    public async Task A_slow_guest_bounds_what_the_writer_can_queue()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;

        byte[] payload = new byte[3 * GuestFlowStream.BufferCapacity];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(i * 7 + (i >> 11));
        }

        // Nothing is acknowledged yet: the write takes one buffer's worth and waits for the rest.
        Task write = stream.WriteAsync(payload).AsTask();
        Assert.False(write.IsCompleted);
        Assert.Equal(GuestFlowStream.BufferCapacity, stream.QueuedBytes);

        // The guest stays slow: it never reads more than its 64240-byte window at a time. The
        // stack sends no more than that window, and the writer never gets more than the buffer in.
        var received = new MemoryStream();
        uint acked = iss + 1;
        while (received.Length < payload.Length)
        {
            ctx.Stack.PumpOnce();
            var segments = Segments(ctx.Link.TakeAll());
            foreach (var s in segments)
            {
                if (s.Payload.Length > 0)
                {
                    Assert.Equal((uint)(iss + 1 + received.Length), s.Tcp.SequenceNumber);
                    received.Write(s.Payload);
                }
            }

            Assert.True(stream.QueuedBytes <= GuestFlowStream.BufferCapacity);
            Assert.True(unchecked((uint)(iss + 1 + received.Length) - acked) <= 64240);
            if (segments.Count == 0)
            {
                // Nothing to send until the writer, woken by the last ACK, queued more: wait for its wake-up.
                ctx.Stack.PumpOnce(WakeWaitMs);
                continue;
            }

            acked = (uint)(iss + 1 + received.Length);
            ctx.Inject(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, acked, TcpFlags.Ack));
        }

        await write;
        Assert.Equal(payload, received.ToArray());
    }

    [Fact]
    public async Task The_window_shows_what_the_reader_has_not_taken()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        uint iss = Handshake(ctx, out uint guestNext);
        var stream = Assert.Single(acceptor.Accepted).Stream;

        var first = Assert.Single(Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh, new byte[1000]))));
        guestNext += 1000;
        var second = Assert.Single(Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, iss + 1, TcpFlags.Ack | TcpFlags.Psh, new byte[1000]))));
        Assert.Equal(2000, stream.ReadableBytes);

        // Without window scaling (the guest's SYN offered none) the field caps at 65535; the
        // buffer is far larger, so both ACKs offer the cap. What the reader leaves is still held.
        Assert.Equal(65535, first.Tcp.Window);
        Assert.Equal(65535, second.Tcp.Window);
        Assert.Equal(2000, await stream.ReadAsync(new byte[4096]));
        Assert.Equal(0, stream.ReadableBytes);
    }

    [Fact]
    public async Task A_guest_filling_a_scaled_window_never_has_a_byte_refused()
    {
        using var ctx = new StackTestContext();
        var acceptor = new Acceptor();
        ctx.Stack.FlowAcceptor = acceptor;
        const uint guestIss = 1000;
        byte[] synOptions = [2, 4, 0x05, 0xB4, 1, 3, 3, 7]; // MSS 1460, NOP, window scale 7
        var synAck = Assert.Single(Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestIss, 0, TcpFlags.Syn, options: synOptions))));
        Assert.True(synAck.Tcp.Options.HasWindowScale);
        int scale = synAck.Tcp.Options.WindowScale;
        uint iss = synAck.Tcp.SequenceNumber;
        uint next = guestIss + 1;
        ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, next, iss + 1, TcpFlags.Ack));
        var stream = Assert.Single(acceptor.Accepted).Stream;

        // The guest sends full segments up to the right edge the stack advertised, and nobody
        // reads: every byte inside the window must be taken (a refusal costs the guest an RTO).
        uint right = next + synAck.Tcp.Window; // the SYN-ACK's window is not scaled
        var payload = new byte[1460];
        int rounds = 0;
        while (TcpSeq.Lt(next, right) && rounds++ < 10_000)
        {
            int length = (int)Math.Min(payload.Length, right - next);
            var ack = Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, next, iss + 1, TcpFlags.Ack, payload.AsSpan(0, length))));
            next += (uint)length;
            if (ack.Count > 0)
            {
                Assert.Equal(next, ack[^1].Tcp.AcknowledgmentNumber);
                uint edge = ack[^1].Tcp.AcknowledgmentNumber + ((uint)ack[^1].Tcp.Window << scale);
                Assert.False(TcpSeq.Lt(edge, right)); // the right edge never moves left
                right = edge;
            }
        }

        Assert.True(stream.ReadableBytes >= GuestFlowStream.BufferCapacity / 2); // the window did close: the buffer is what filled
        Assert.Equal((int)(next - guestIss - 1), stream.ReadableBytes);
    }

    [Fact]
    public async Task An_inbound_stream_reaches_the_guest_once_it_accepts_and_a_refusal_is_a_reset()
    {
        using var ctx = new StackTestContext();
        ctx.AssertStillAnswersArp(); // the guest's MAC is known
        var stream = ctx.Stack.AttachGuestStream(IPAddress.Parse("10.200.0.9"), 50000, 7000);
        Assert.NotNull(stream);
        var syn = Assert.Single(Segments(ctx.Link.TakeAll()));
        Assert.Equal(TcpFlags.Syn, syn.Tcp.Flags);
        Assert.Equal(0x0AC8_0009u, syn.Ip.Source);

        // Bytes written before the guest accepted wait; the 4-tuple is taken meanwhile.
        await stream.WriteAsync("early"u8.ToArray());
        Assert.Null(ctx.Stack.AttachGuestStream(IPAddress.Parse("10.200.0.9"), 50000, 7000));
        ctx.Stack.PumpOnce();
        Assert.Empty(ctx.Link.TakeAll());

        // The guest refuses: the stream fails as a reset at once.
        ValueTask<int> read = stream.ReadAsync(new byte[16]);
        ctx.Exchange(Tcp4Frame(GuestIp, 0x0AC8_0009, 7000, 50000, 0, syn.Tcp.SequenceNumber + 1, TcpFlags.Rst | TcpFlags.Ack));
        var e = await Assert.ThrowsAsync<IOException>(async () => await read);
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
    }

    [Fact]
    public async Task An_accepted_inbound_stream_carries_bytes_and_an_early_shutdown_becomes_a_fin_after_the_handshake()
    {
        using var ctx = new StackTestContext();
        ctx.AssertStillAnswersArp();
        var stream = ctx.Stack.AttachGuestStream(IPAddress.Parse("10.200.0.9"), 50001, 7000)!;
        var syn = Assert.Single(Segments(ctx.Link.TakeAll()));
        await stream.WriteAsync("ping"u8.ToArray());
        stream.ShutdownWrite(); // before the guest accepted: must not drop the connection
        ctx.Stack.PumpOnce();
        Assert.Empty(ctx.Link.TakeAll());

        const uint guestIss = 5000;
        ctx.Inject(Tcp4Frame(GuestIp, 0x0AC8_0009, 7000, 50001, guestIss, syn.Tcp.SequenceNumber + 1, TcpFlags.Syn | TcpFlags.Ack, options: MssOption));
        ctx.Stack.PumpOnce();
        var sent = Segments(ctx.Link.TakeAll());
        Assert.Equal("ping"u8.ToArray(), sent.SelectMany(s => s.Payload).ToArray());
        Assert.Contains(sent, s => (s.Tcp.Flags & TcpFlags.Fin) != 0);
        Assert.DoesNotContain(sent, s => (s.Tcp.Flags & TcpFlags.Rst) != 0);
    }

    /// <summary>The guest's SYN to the mesh address, the stack's SYN-ACK, the guest's ACK. Returns the stack's ISS.</summary>
    private static uint Handshake(StackTestContext ctx, out uint guestNext)
    {
        const uint guestIss = 1000;
        var synAck = Assert.Single(Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestIss, 0, TcpFlags.Syn, options: MssOption))));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Tcp.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst));
        Assert.Equal(guestIss + 1, synAck.Tcp.AcknowledgmentNumber);
        Assert.Equal(Mesh, synAck.Ip.Source);
        guestNext = guestIss + 1;
        Assert.Empty(Segments(ctx.Exchange(Tcp4Frame(GuestIp, Mesh, GuestPort, MeshPort, guestNext, synAck.Tcp.SequenceNumber + 1, TcpFlags.Ack))));
        return synAck.Tcp.SequenceNumber;
    }

    private static List<(( uint Source, uint Destination) Ip, TcpRepr Tcp, byte[] Payload)> Segments(List<byte[]> frames)
    {
        var result = new List<((uint, uint), TcpRepr, byte[])>();
        foreach (var frame in frames)
        {
            EmittedFrameChecker.AssertWellFormed(frame, vnet: false);
            if (!Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) || ip.Protocol != IpProtocol.Tcp)
            {
                continue;
            }

            Assert.True(TcpPacket.TryCreate(ip.Payload, out var tcp));
            Assert.True(TcpRepr.TryParse(tcp, out var repr));
            result.Add(((ip.Source.Value, ip.Destination.Value), repr, tcp.Payload.ToArray()));
        }

        return result;
    }

    private sealed class Acceptor : IFlowAcceptor
    {
        public List<(IPEndPoint Destination, GuestFlowStream Stream)> Accepted { get; } = [];

        public bool Claims(IPEndPoint destination) => destination.Address.Equals(IPAddress.Parse("10.200.0.5"));

        public void Accept(IPEndPoint destination, GuestFlowStream stream) => Accepted.Add((destination, stream));
    }
}
