using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Tcp;

/// <summary>
/// One connection under test against a hand-driven peer: the test builds the peer's segments,
/// injects them and inspects what the connection wrote. Time is a plain TimeSpan the test advances.
/// </summary>
internal sealed class TcpTestContext
{
    public const uint OurIss = 1000;
    public const uint PeerIss = 50_000;

    public TcpTestContext(TcpConnectionOptions? options = null, long sinkCapacity = 1 << 20)
    {
        Options = options ?? new TcpConnectionOptions();
        Source = new MemorySendSource();
        Sink = new MemoryReceiveSink(sinkCapacity);
        Out = new RecordingWriter(Source);
        Conn = new TcpConnection(Options, Source, Sink, OurIss);
    }

    public TcpConnectionOptions Options { get; }
    public MemorySendSource Source { get; }
    public MemoryReceiveSink Sink { get; }
    public RecordingWriter Out { get; }
    public TcpConnection Conn { get; }
    public TimeSpan Now { get; private set; } = TimeSpan.FromSeconds(10);

    /// <summary>Peer's next sequence number (what it sends next).</summary>
    public uint PeerNext { get; set; } = PeerIss + 1;

    public bool PeerTimestamps { get; set; } = true;
    public uint PeerTsVal { get; set; } = 7000;
    public byte PeerWindowScale { get; set; } = 7;
    public ushort PeerWindow { get; set; } = 65535;

    public void Advance(TimeSpan d)
    {
        Now += d;
        Out.Now = Now;
    }

    public void RunTimersUntil(TimeSpan until)
    {
        while (Conn.NextDeadline is { } d && d <= until)
        {
            if (d > Now)
            {
                Now = d;
                Out.Now = Now;
            }

            Conn.OnTimer(Now, Out);
        }

        if (until > Now)
        {
            Now = until;
            Out.Now = Now;
        }
    }

    public TcpSegmentInfo PeerSyn(ushort mss = 1460, bool sack = true)
    {
        var s = new TcpSegmentInfo { Seq = PeerIss, Flags = TcpFlags.Syn, Window = 65535 };
        s.Options.Mss = mss;
        s.Options.HasWindowScale = PeerWindowScale > 0;
        s.Options.WindowScale = PeerWindowScale;
        s.Options.SackPermitted = sack;
        if (PeerTimestamps)
        {
            s.Options.HasTimestamp = true;
            s.Options.TsVal = PeerTsVal;
        }

        return s;
    }

    /// <summary>Passive open: the peer's SYN, our SYN-ACK, the peer's ACK.</summary>
    public void Establish(ushort mss = 1460, bool sack = true)
    {
        var syn = PeerSyn(mss, sack);
        Conn.AcceptSyn(in syn, Now, Out);
        Inject(TcpFlags.Ack, ack: OurIss + 1);
        Out.Segments.Clear();
        Conn.TakeEvents();
    }

    public TcpSegmentInfo Segment(TcpFlags flags, uint? seq = null, uint? ack = null, int length = 0, ushort? window = null)
    {
        var s = new TcpSegmentInfo
        {
            Seq = seq ?? PeerNext,
            Ack = ack ?? Conn.SendNext,
            Flags = flags,
            Window = window ?? PeerWindow,
            PayloadLength = length,
        };
        if (PeerTimestamps)
        {
            PeerTsVal++;
            s.Options.HasTimestamp = true;
            s.Options.TsVal = PeerTsVal;
            s.Options.TsEcr = Out.Segments.Count > 0 ? Out.Last.Info.Options.TsVal : 0;
        }

        return s;
    }

    /// <summary>Sends a peer segment; advances PeerNext for in-order data/FIN when seq was not overridden.</summary>
    public void Inject(TcpFlags flags, uint? seq = null, uint? ack = null, byte[]? payload = null, ushort? window = null)
    {
        payload ??= Array.Empty<byte>();
        var s = Segment(flags, seq, ack, payload.Length, window);
        Send(in s, payload);
        if (seq is null)
        {
            PeerNext += (uint)payload.Length + ((flags & TcpFlags.Fin) != 0 ? 1u : 0u);
        }
    }

    public void Send(in TcpSegmentInfo s, byte[] payload) => Conn.OnSegment(in s, payload, Now, Out);

    public static byte[] Bytes(int n, int seed = 1)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }
}
