using System.Buffers.Binary;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Wire;
using FsCheck;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// IPv4 reassembly with hand-built fragments: order, duplicates, overlaps (RFC 5722's rule), the
/// timeout, the memory limits, and properties over random cuts and random bytes.
/// </summary>
public class Ipv4ReassemblerTests
{
    private const uint Src = 0x0A00_0264;
    private const uint Dst = 0x0A00_0202;
    private static readonly TimeSpan T0 = TimeSpan.FromSeconds(100);

    /// <summary>A UDP-protocol datagram of <paramref name="payloadLength"/> bytes with a recognisable pattern.</summary>
    private static byte[] Datagram(int payloadLength, ushort id = 7, byte seed = 1)
    {
        var payload = new byte[payloadLength];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(i * 31 + seed);
        }

        byte[] ip = TestFrames.Ipv4(Src, Dst, IpProtocol.Udp, payload);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(6), 0);
        Refill(ip);
        return ip;
    }

    /// <summary>The fragment of <paramref name="datagram"/> covering payload bytes [offset, offset + length).</summary>
    private static byte[] Fragment(byte[] datagram, int offset, int length, bool? more = null)
    {
        int payloadLength = datagram.Length - 20;
        var f = new byte[20 + length];
        datagram.AsSpan(0, 20).CopyTo(f);
        datagram.AsSpan(20 + offset, length).CopyTo(f.AsSpan(20));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(2), (ushort)f.Length);
        bool mf = more ?? offset + length < payloadLength;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(6), (ushort)((mf ? 0x2000 : 0) | (offset / 8)));
        Refill(f);
        return f;
    }

    private static void Refill(byte[] ip)
    {
        ip[10] = 0;
        ip[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(10), InternetChecksum.Compute(ip.AsSpan(0, 20)));
    }

    private static void AssertIsDatagram(byte[] expected, ReadOnlySpan<byte> actual)
    {
        Assert.Equal(expected, actual.ToArray());
        Assert.True(Ipv4Packet.TryCreate(actual.ToArray(), out Ipv4Packet ip));
        Assert.False(ip.IsFragment);
        Assert.True(ip.VerifyChecksum());
    }

    [Fact]
    public void FragmentsInAnyOrder_AreReassembledIntoTheOriginal()
    {
        var r = new Ipv4Reassembler();
        byte[] d = Datagram(3000);

        Assert.Equal(ReassemblyOutcome.Pending, r.Add(Fragment(d, 1480, 1480), T0, out _));
        Assert.Equal(ReassemblyOutcome.Pending, r.Add(Fragment(d, 2960, 40), T0, out _));
        Assert.Equal(ReassemblyOutcome.Complete, r.Add(Fragment(d, 0, 1480), T0, out Span<byte> whole));

        AssertIsDatagram(d, whole);
        Assert.Equal(1, r.Counters.Reassembled);
        Assert.Equal(0, r.BytesHeld);
        Assert.Equal(0, r.PendingDatagrams);
    }

    [Fact]
    public void ExactRepeat_IsIgnored_AndTheDatagramStillCompletes()
    {
        var r = new Ipv4Reassembler();
        byte[] d = Datagram(200);

        r.Add(Fragment(d, 0, 96), T0, out _);
        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(Fragment(d, 0, 96), T0, out _));
        Assert.Equal(ReassemblyOutcome.Complete, r.Add(Fragment(d, 96, 104), T0, out Span<byte> whole));

        AssertIsDatagram(d, whole);
        Assert.Equal(1, r.Counters.Duplicates);
    }

    [Fact]
    public void OverlapWithDifferentBytes_DiscardsTheDatagram_AndItsLaterFragmentsUntilTheTimeout()
    {
        var r = new Ipv4Reassembler();
        byte[] d = Datagram(200);
        byte[] forged = Fragment(d, 0, 96);
        forged[20 + 50] ^= 0xFF;
        Refill(forged);

        r.Add(Fragment(d, 0, 96), T0, out _);
        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(forged, T0, out _));
        // The honest rest arrives, but the datagram is gone for good: nothing is delivered.
        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(Fragment(d, 96, 104), T0, out _));
        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(Fragment(d, 0, 96), T0, out _));

        Assert.Equal(0, r.Counters.Reassembled);
        Assert.Equal(3, r.Counters.Overlaps);
        Assert.Equal(0, r.BytesHeld);

        // Once the timeout passes the identification may be used again.
        r.Expire(T0 + r.Timeout);
        r.Add(Fragment(d, 0, 96), T0 + r.Timeout, out _);
        Assert.Equal(ReassemblyOutcome.Complete, r.Add(Fragment(d, 96, 104), T0 + r.Timeout, out Span<byte> whole));
        AssertIsDatagram(d, whole);
    }

    [Fact]
    public void PartialOverlap_IsAnOverlap()
    {
        var r = new Ipv4Reassembler();
        byte[] d = Datagram(400);

        r.Add(Fragment(d, 0, 200), T0, out _);
        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(Fragment(d, 192, 16), T0, out _));

        Assert.Equal(1, r.Counters.Overlaps);
    }

    [Fact]
    public void LastFragmentsThatDisagreeOnTheEnd_DiscardTheDatagram()
    {
        var r = new Ipv4Reassembler();
        byte[] d = Datagram(400);

        r.Add(Fragment(d, 200, 200), T0, out _);
        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(Fragment(d, 200, 104, more: false), T0, out _));

        Assert.Equal(1, r.Counters.Overlaps);
    }

    [Fact]
    public void IncompleteDatagram_IsDroppedAtTheTimeout_AndItsMemoryReturned()
    {
        var r = new Ipv4Reassembler(timeout: TimeSpan.FromSeconds(30));
        byte[] d = Datagram(3000);
        r.Add(Fragment(d, 0, 1480), T0, out _);
        Assert.True(r.BytesHeld > 0);
        Assert.Equal(T0 + TimeSpan.FromSeconds(30), r.NextDeadline);

        r.Expire(T0 + TimeSpan.FromSeconds(29));
        Assert.Equal(1, r.PendingDatagrams);
        r.Expire(T0 + TimeSpan.FromSeconds(30));

        Assert.Equal(0, r.PendingDatagrams);
        Assert.Equal(0, r.BytesHeld);
        Assert.Equal(1, r.Counters.Timeouts);
        Assert.Null(r.NextDeadline);
    }

    [Theory]
    [InlineData(65528, 16)] // ends past 65535: the "ping of death"
    [InlineData(0, 100)]    // a non-last fragment of a length not a multiple of 8
    public void ImpossibleFragment_IsMalformed(int offset, int length)
    {
        var r = new Ipv4Reassembler();
        var f = new byte[20 + length];
        f[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(2), (ushort)f.Length);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(6), (ushort)(0x2000 | (offset / 8)));
        f[9] = 17;

        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(f, T0, out _));

        Assert.Equal(1, r.Counters.Malformed);
        Assert.Equal(0, r.BytesHeld);
    }

    [Fact]
    public void OneSource_IsHeldToItsShare()
    {
        var r = new Ipv4Reassembler(maxBytesPerSource: 16 * 1024, maxBytesTotal: 1 << 20);

        // First fragments of many datagrams, none ever completed.
        for (ushort id = 0; id < 100; id++)
        {
            r.Add(Fragment(Datagram(3000, id), 0, 1480), T0, out _);
        }

        Assert.True(r.BytesHeld <= 16 * 1024, $"held {r.BytesHeld}");
        Assert.True(r.Counters.LimitDrops > 0);
    }

    [Fact]
    public void AllSources_AreHeldToTheTotal_ByDroppingTheOldest()
    {
        var r = new Ipv4Reassembler(maxBytesPerSource: 1 << 20, maxBytesTotal: 32 * 1024);
        byte[] first = Datagram(3000, 1);
        r.Add(Fragment(first, 0, 1480), T0, out _);

        for (ushort id = 2; id < 100; id++)
        {
            byte[] d = Datagram(3000, id);
            BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(12), Src + id); // another source each time
            Refill(d);
            r.Add(Fragment(d, 0, 1480), T0, out _);
        }

        Assert.True(r.BytesHeld <= 32 * 1024, $"held {r.BytesHeld}");
        // The oldest datagram made room: its last fragment completes nothing.
        Assert.Equal(ReassemblyOutcome.Pending, r.Add(Fragment(first, 1480, 1520), T0, out _));
    }

    [Fact]
    public void TooManyPieces_DropTheDatagram()
    {
        var r = new Ipv4Reassembler(maxFragmentsPerDatagram: 4);
        byte[] d = Datagram(80);

        for (int offset = 0; offset < 32; offset += 8)
        {
            Assert.Equal(ReassemblyOutcome.Pending, r.Add(Fragment(d, offset, 8), T0, out _));
        }

        Assert.Equal(ReassemblyOutcome.Dropped, r.Add(Fragment(d, 32, 8), T0, out _));
        Assert.Equal(0, r.PendingDatagrams);
        Assert.Equal(0, r.BytesHeld);
    }

    /// <summary>Any cut on 8-byte boundaries, delivered in any order with repeats, gives back the datagram once.</summary>
    [Property(MaxTest = 300)]
    public void AnyCutInAnyOrder_ReassemblesOnce(PositiveInt length, int[] cuts, int[] order, bool[] repeat)
    {
        int payloadLength = 8 + (length.Get % 4000);
        byte[] d = Datagram(payloadLength, seed: (byte)length.Get);
        var bounds = new SortedSet<int> { 0, payloadLength };
        foreach (int c in cuts ?? [])
        {
            int at = Math.Abs(c % payloadLength) / 8 * 8;
            bounds.Add(at);
        }

        int[] b = [.. bounds];
        if (b.Length == 2)
        {
            bounds.Add(payloadLength / 16 * 8 is > 0 and var mid ? mid : 8);
            b = [.. bounds.Where(x => x <= payloadLength)];
        }

        if (b.Length == 2)
        {
            return; // an 8-byte datagram cannot be cut: it is no fragment at all
        }

        var fragments = new List<byte[]>();
        bool repeated = false;
        for (int i = 0; i + 1 < b.Length; i++)
        {
            fragments.Add(Fragment(d, b[i], b[i + 1] - b[i]));
            if (repeat is { Length: > 0 } && repeat[i % repeat.Length])
            {
                fragments.Add(Fragment(d, b[i], b[i + 1] - b[i]));
                repeated = true;
            }
        }

        // A deterministic shuffle driven by the generated order.
        var shuffled = fragments.Select((f, i) => (f, key: order is { Length: > 0 } ? order[i % order.Length] ^ i : i)).OrderBy(x => x.key).Select(x => x.f).ToList();
        var r = new Ipv4Reassembler();
        int completions = 0;
        foreach (byte[] f in shuffled)
        {
            if (r.Add(f, T0, out Span<byte> whole) == ReassemblyOutcome.Complete)
            {
                completions++;
                AssertIsDatagram(d, whole);
            }
        }

        // Repeats arriving after the completion start the same datagram again (the identification is
        // free once it completed) and may complete it again, always intact.
        Assert.True(repeated ? completions >= 1 : completions == 1, $"{completions} completions");
        r.Expire(T0 + r.Timeout);
        Assert.Equal(0, r.BytesHeld);
    }

    /// <summary>Arbitrary bytes never throw, and memory never passes the total limit.</summary>
    [Property(MaxTest = 500)]
    public void ArbitraryFragments_NeverThrow_AndStayWithinTheLimit(byte[][] packets)
    {
        var r = new Ipv4Reassembler(maxBytesPerSource: 8 * 1024, maxBytesTotal: 16 * 1024);
        foreach (byte[] p in packets ?? [])
        {
            if (p is null)
            {
                continue;
            }

            r.Add(p, T0, out _);
            Assert.InRange(r.BytesHeld, 0, 16 * 1024);
        }
    }
}
