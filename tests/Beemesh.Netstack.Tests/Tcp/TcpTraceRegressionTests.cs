using System.Buffers.Binary;
using System.Security.Cryptography;
using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Tests.Tcp;

/// <summary>
/// Whole-connection traces under loss, reordering, duplication and timeouts, reduced to a SHA-256
/// of every segment put on the wire (time, sequence, acknowledgment, flags, length, window,
/// timestamps) together with the sender's congestion window, slow-start threshold and recovery
/// flag at that moment. The expected digests were recorded from the connection as it was when
/// congestion control still lived inline in <see cref="TcpConnection"/>: the default NewReno
/// controller must reproduce those decisions segment for segment. A deliberate change to loss
/// recovery or window growth changes a digest and must come with new ones.
/// </summary>
public class TcpTraceRegressionTests
{
    public static TheoryData<string, bool, double, int, int, string> Traces => new()
    {
        // name, SACK, loss, delay ms, seed, digest
        { "no SACK, 5% loss", false, 0.05, 5, 11, "CA4A3BCFC4C2A3E98D9140B677F0D459" },
        { "SACK, 5% loss", true, 0.05, 5, 12, "4F592EB104924C6349CF6B2BAEB0B06C" },
        { "no SACK, 20% loss (timeouts)", false, 0.20, 5, 13, "BC1A40D55A2E150C414A5FB44D6D0F1C" },
        { "SACK, 2% loss, 20 ms", true, 0.02, 20, 14, "EB69561BA1C8E82681FAFB8BB4CC5657" },
        { "no SACK, 1% loss, 20 ms", false, 0.01, 20, 15, "F1A26EBB56E6C3AAF6B6E592FBF41302" },
    };

    [Theory]
    [MemberData(nameof(Traces))]
    public void DefaultCongestionControl_ReproducesRecordedTrace(string name, bool sack, double loss, int delayMs, int seed, string digest)
    {
        string actual = Run(sack, loss, delayMs, seed, out string summary);
        Assert.True(digest == actual, $"{name}: trace digest {actual} {summary}, recorded {digest}");
    }

    internal static string Run(bool sack, double loss, int delayMs, int seed, out string summary)
    {
        var options = new TcpConnectionOptions { Sack = sack };
        var link = new LinkProfile(Loss: loss, Duplicate: loss > 0 ? 0.02 : 0, Reorder: loss > 0 ? 0.05 : 0, Delay: TimeSpan.FromMilliseconds(delayMs));
        var h = new TcpPairHarness(seed, link, options, new TcpConnectionOptions { Sack = sack }, serverSink: 4 << 20);
        h.Client.SourceLimit = 2 << 20;
        byte[] up = TcpTestContext.Bytes(2 << 20, seed);
        byte[] down = TcpTestContext.Bytes(200_000, seed + 1);
        h.Client.Send(up, close: true);
        h.Server.Send(down, close: false);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] record = new byte[64];
        int segments = 0;
        int recoveries = 0;
        bool wasInRecovery = false;
        h.OnWire = (e, s) =>
        {
            var c = e.Conn;
            Span<byte> r = record;
            r[0] = e == h.Client ? (byte)1 : (byte)2;
            r[1] = (byte)s.Flags;
            BinaryPrimitives.WriteInt64LittleEndian(r[2..], h.Now.Ticks);
            BinaryPrimitives.WriteUInt32LittleEndian(r[10..], s.Seq);
            BinaryPrimitives.WriteUInt32LittleEndian(r[14..], s.Ack);
            BinaryPrimitives.WriteInt32LittleEndian(r[18..], s.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(r[22..], s.Info.Window);
            BinaryPrimitives.WriteUInt32LittleEndian(r[24..], s.Info.Options.TsVal);
            BinaryPrimitives.WriteUInt32LittleEndian(r[28..], s.Info.Options.TsEcr);
            BinaryPrimitives.WriteInt32LittleEndian(r[32..], c.CongestionWindow);
            BinaryPrimitives.WriteInt32LittleEndian(r[36..], c.SlowStartThreshold);
            r[40] = c.InRecovery ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteInt64LittleEndian(r[41..], c.RetransmissionTimeout.Ticks);
            hash.AppendData(r[..49]);
            segments++;
            if (e == h.Client && c.InRecovery && !wasInRecovery)
            {
                recoveries++;
            }

            if (e == h.Client)
            {
                wasInRecovery = c.InRecovery;
            }
        };
        h.Connect();
        bool done = h.RunUntil(() => h.Client.Conn.State == TcpState.Closed && h.Server.Conn.State == TcpState.Closed, TimeSpan.FromHours(2));
        Assert.True(done, $"client {h.Client.Conn.State} server {h.Server.Conn.State}");
        Assert.Equal(up, h.Server.Sink.All.ToArray());
        Assert.Equal(down, h.Client.Sink.All.ToArray());
        summary = $"({segments} segments, {recoveries} recoveries, {h.Dropped} dropped, {h.Now.TotalSeconds:F3} s)";
        return Convert.ToHexString(hash.GetHashAndReset())[..32];
    }
}
