using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// A guest uploads to a host loopback server that reads slowly: the host socket's send buffer
/// fills and the flow holds what the kernel refused. Every byte the guest sends inside the window
/// the stack advertised must be taken (ACKed at once), never dropped: the guest negotiated no SACK,
/// so a refused byte in the middle of a window costs it a go-back retransmission of everything
/// after it. Socket readiness is real, so the test pumps in bounded loops, never sleeps itself.
/// </summary>
public class NetworkStackSlowHostReaderTests
{
    private const int Total = 48 << 20;
    private const int SegmentPayload = 65000;
    private const int FramesPerBatch = 64; // what the stack reads from its link before it looks at host sockets
    private const ushort GuestPort = 41100;

    // MSS 65480, NOP, window scale 7: the guest scales its window like Linux does.
    private static readonly byte[] SynOptions = [2, 4, 0xFF, 0xC8, 1, 3, 3, 7];

    [Fact]
    public void GuestUploadToSlowHostReader_EveryInWindowSegmentIsTaken_AndAllBytesArrive()
    {
        var data = new byte[Total];
        new Random(42).NextBytes(data);
        byte[] expectedHash = SHA256.HashData(data);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        // Trim once 64 KiB of hold (the smallest buffer) went back; time only moves at the end.
        using var ctx = new StackTestContext(configure: o => { o.Mtu = 65520; o.MemoryTrimMinReleasedFlows = 64; });

        const uint Isn = 10_000;
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, Isn, 0, TcpFlags.Syn, options: SynOptions));
        var synAck = PumpUntil(ctx, t => (t.Flags & TcpFlags.Syn) != 0);
        Assert.True(synAck.Options.HasWindowScale);
        int scale = synAck.Options.WindowScale;
        uint ourNext = synAck.SequenceNumber + 1;
        using var host = listener.AcceptSocket();

        // The host reader: the first 8 MiB at full speed (the kernel grows the socket buffers),
        // then 16 KiB at a time with a pause, like a consumer whose own output is back-pressured.
        long received = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new Thread(() =>
        {
            var buffer = new byte[16 * 1024];
            while (true)
            {
                int n;
                try
                {
                    n = host.Receive(buffer);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return; // the test failed and closed the socket
                }

                if (n <= 0)
                {
                    return;
                }

                hash.AppendData(buffer, 0, n);
                received += n;
                if (received > 8 << 20)
                {
                    Thread.Sleep(1);
                }
            }
        })
        { IsBackground = true };
        reader.Start();

        uint start = Isn + 1;
        uint una = start;
        uint nxt = start;
        uint right = una + synAck.Window;
        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, nxt, ourNext, TcpFlags.Ack));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        long peakHold = 0;
        while (una - start < Total)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the upload stalled at {una - start} of {Total} bytes");

            // One batch: everything the advertised window allows, as a sender with a large cwnd would.
            int frames = 0;
            while (frames < FramesPerBatch && TcpSeq.Lt(nxt, right) && nxt - start < Total)
            {
                int len = (int)Math.Min(SegmentPayload, Math.Min(right - nxt, Total - (nxt - start)));
                var payload = data.AsSpan((int)(nxt - start), len);
                ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, nxt, ourNext, TcpFlags.Ack, payload));
                nxt += (uint)len;
                frames++;
            }

            bool idle = frames == 0;
            for (int i = 0; i < (idle ? 1 : 20); i++)
            {
                ctx.Stack.PumpOnce(idle ? 10 : 0);
                peakHold = Math.Max(peakHold, ctx.Stack.HoldBytesOut);
                foreach (var ack in TakeSegments(ctx))
                {
                    if (TcpSeq.Gt(ack.AcknowledgmentNumber, una))
                    {
                        una = ack.AcknowledgmentNumber;
                    }

                    uint edge = ack.AcknowledgmentNumber + ((uint)ack.Window << scale);
                    if (TcpSeq.Gt(edge, right))
                    {
                        right = edge;
                    }
                }

                if (una == nxt)
                {
                    break;
                }
            }

            Assert.True(una == nxt, $"bytes inside the advertised window were not taken: acked {una - start}, sent {nxt - start}, window right edge {right - start}");
        }

        ctx.Inject(Tcp4Frame(GuestIp, GatewayIp, GuestPort, port, nxt, ourNext, TcpFlags.Ack | TcpFlags.Fin));
        for (int i = 0; i < 12_000 && reader.IsAlive; i++)
        {
            ctx.Stack.PumpOnce(10);
            ctx.Link.TakeAll();
        }

        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "the host never saw the guest's FIN");
        Assert.Equal(Total, received);
        Assert.Equal(expectedHash, hash.GetHashAndReset());

        // The hold buffers all went back, and (fake time standing still until now) the stack gives
        // them up once, a settle time after the transfer ended.
        Assert.True(peakHold > 0, "the slow reader never made the flow hold bytes");
        Assert.Equal(0, ctx.Stack.HoldBytesOut);
        Assert.Equal(0, ctx.Counters.MemoryTrims);
        ctx.Time.Advance(TimeSpan.FromSeconds(3));
        ctx.Stack.PumpOnce(0);
        Assert.Equal(1, ctx.Counters.MemoryTrims);
    }

    private static List<TcpRepr> TakeSegments(StackTestContext ctx)
    {
        var result = new List<TcpRepr>();
        while (ctx.Link.TryTake(out var frame))
        {
            if (Ipv4Packet.TryCreate(frame.AsSpan(14), out var ip) && ip.Protocol == IpProtocol.Tcp
                && TcpPacket.TryCreate(ip.Payload, out var tcp) && TcpRepr.TryParse(tcp, out var repr))
            {
                Assert.True((repr.Flags & TcpFlags.Rst) == 0, "the stack reset the upload");
                result.Add(repr);
            }
        }

        return result;
    }

    private static TcpRepr PumpUntil(StackTestContext ctx, Func<TcpRepr, bool> match)
    {
        for (int i = 0; i < 500; i++)
        {
            ctx.Stack.PumpOnce(10);
            foreach (var repr in TakeSegments(ctx))
            {
                if (match(repr))
                {
                    return repr;
                }
            }
        }

        Assert.Fail("the stack sent no matching TCP segment");
        return default;
    }
}
