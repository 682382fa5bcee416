using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Tcp;

public class TcpConnectionPropertyTests
{
    private static readonly byte[] PeerStream = TcpTestContext.Bytes(1 << 16, 42);

    /// <summary>
    /// Arbitrary segments (any flags, sequence and acknowledgment numbers near the edges, any
    /// length), interleaved with clock jumps, application writes, drains and closes: the
    /// connection never throws, never sends bytes the source does not hold, and keeps its invariants.
    /// </summary>
    [Property(MaxTest = 300)]
    public void RandomSegmentStreams_NeverThrow_AndKeepInvariants(int[] ops, bool sack, bool timestamps, int sinkCapacity)
    {
        var options = new TcpConnectionOptions { Sack = sack, Timestamps = timestamps, KeepAliveIdle = TimeSpan.FromSeconds(30), MaxRetransmissions = 5 };
        var ctx = new TcpTestContext(options, 500 + Math.Abs(sinkCapacity % 20_000)) { PeerTimestamps = timestamps };
        ctx.Establish(sack: sack);
        var appBytes = TcpTestContext.Bytes(1 << 18, 7);
        int appended = 0;
        bool closed = false;

        foreach (int op in ops ?? Array.Empty<int>())
        {
            int kind = op & 7;
            int seqDelta = ((op >> 3) & 0xFFF) - 1024;
            int ackDelta = ((op >> 15) & 0x3FFF) - 2048;
            int len = (op >> 22) & 0x7FF;
            uint seq = ctx.Conn.ReceiveNext + (uint)seqDelta;
            uint ack = ctx.Conn.SendUnacknowledged + (uint)ackDelta;
            long streamOffset = TcpSeq.Diff(seq, TcpTestContext.PeerIss + 1);
            if (streamOffset < 0 || streamOffset + len > PeerStream.Length)
            {
                len = 0;
            }

            byte[] payload = len == 0 ? Array.Empty<byte>() : PeerStream.AsSpan((int)streamOffset, len).ToArray();
            switch (kind)
            {
                case 0:
                case 1:
                    Inject(ctx, TcpFlags.Ack | (kind == 0 ? TcpFlags.Psh : 0), seq, ack, payload, (ushort)(op >> 16), op);
                    break;
                case 2:
                    Inject(ctx, TcpFlags.Ack | TcpFlags.Fin, seq, ack, payload, 1000, op);
                    break;
                case 3:
                    Inject(ctx, (op & 8) != 0 ? TcpFlags.Rst : TcpFlags.Rst | TcpFlags.Ack, seq, ack, Array.Empty<byte>(), 0, op);
                    break;
                case 4:
                    Inject(ctx, TcpFlags.Syn | ((op & 8) != 0 ? TcpFlags.Ack : 0), seq, ack, payload, 500, op);
                    break;
                case 5:
                    ctx.RunTimersUntil(ctx.Now + TimeSpan.FromMilliseconds((op >> 3) & 0x3FFF));
                    break;
                case 6:
                    int n = Math.Min((op >> 3) & 0x3FFF, appBytes.Length - appended);
                    if (!closed)
                    {
                        ctx.Source.Append(appBytes.AsSpan(appended, n));
                        appended += n;
                    }

                    ctx.Conn.Poll(ctx.Now, ctx.Out);
                    break;
                default:
                    if ((op & 8) != 0)
                    {
                        ctx.Sink.DrainAll();
                    }
                    else
                    {
                        closed = true;
                        ctx.Conn.Close();
                    }

                    ctx.Conn.Poll(ctx.Now, ctx.Out);
                    break;
            }

            CheckInvariants(ctx, closed);
            ctx.Out.Segments.Clear();
        }
    }

    private static void Inject(TcpTestContext ctx, TcpFlags flags, uint seq, uint ack, byte[] payload, ushort window, int op)
    {
        var s = ctx.Segment(flags, seq, ack, payload.Length, window);
        if ((op & 0x40000000) != 0 && s.Options.HasTimestamp)
        {
            s.Options.TsVal -= (uint)(op & 0xFFFF); // stale timestamps exercise PAWS
        }

        if ((op & 0x20000000) != 0 && (flags & TcpFlags.Ack) != 0)
        {
            s.Options.SackCount = 1;
            s.Options.Sack[0] = new SackBlock(ack + (uint)(op & 0xFFF), ack + (uint)(op & 0xFFF) + (uint)(op >> 12 & 0xFFF));
        }

        ctx.Send(in s, payload);
    }

    private static void CheckInvariants(TcpTestContext ctx, bool closed)
    {
        var c = ctx.Conn;
        Assert.True(TcpSeq.Le(c.SendUnacknowledged, c.SendNext), $"una {c.SendUnacknowledged} nxt {c.SendNext}");
        long ackedSeq = TcpSeq.Diff(c.SendUnacknowledged, TcpTestContext.OurIss + 1);
        long finPart = ackedSeq - ctx.Source.TotalDiscarded;
        Assert.True(finPart == 0 || (closed && finPart == 1), $"acked {ackedSeq} discarded {ctx.Source.TotalDiscarded}");
        Assert.True(ctx.Source.TotalDiscarded <= ctx.Source.TotalAppended);
        Assert.True(c.CongestionWindow >= c.SendMss);

        var got = ctx.Sink.All;
        for (int i = 0; i < got.Count; i++)
        {
            if (got[i] != PeerStream[i])
            {
                Assert.Fail($"sink byte {i} differs from what the peer sent");
            }
        }

        if (c.State != TcpState.Closed)
        {
            long rcv = TcpSeq.Diff(c.ReceiveNext, TcpTestContext.PeerIss + 1);
            Assert.True(rcv == got.Count || rcv == got.Count + 1, $"rcv.nxt offset {rcv} sink {got.Count}");
            if (c.NextDeadline is { } d)
            {
                Assert.True(d >= ctx.Now - TimeSpan.FromDays(1));
            }
        }
    }
}
