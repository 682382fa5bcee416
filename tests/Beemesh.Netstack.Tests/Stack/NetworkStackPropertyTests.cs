using System.Buffers.Binary;
using Beemesh.Netstack.Tests.Dhcp;
using Beemesh.Netstack.Wire;
using FsCheck.Xunit;
using static Beemesh.Netstack.Tests.Stack.TestFrames;

namespace Beemesh.Netstack.Tests.Stack;

/// <summary>
/// Whatever the guest sends, the stack never throws and everything it writes back parses
/// cleanly with correct checksums. Host loopback is disabled and destinations are confined to
/// the virtual network, so no case can open a host socket.
/// </summary>
public class NetworkStackPropertyTests
{
    private static readonly byte[][] Seeds =
    [
        ArpRequest(GatewayIp),
        Tcp4Frame(GuestIp, UnusedIp, 40000, 80, 1000, 0, TcpFlags.Syn, options: [2, 4, 5, 0xB4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0]),
        Tcp4Frame(GuestIp, GatewayIp, 40001, 443, 5000, 77, TcpFlags.Ack | TcpFlags.Psh, "GET / HTTP/1.1\r\n"u8),
        Udp4Frame(GuestIp, DnsIp, 5353, 53, new byte[29]),
        Udp4Frame(0, 0xFFFF_FFFF, 68, 67, DhcpTestPackets.Build(1, GuestMac)),
        IcmpEcho4Frame(GuestIp, GatewayIp, 1, 2, new byte[32]),
        Icmpv6Frame(GuestLinkLocal, V6("ff02::2"), 133, new byte[4], dstMac: 0x3333_0000_0002),
        Icmpv6Frame(Guest6, V6("ff02::1:ff00:2"), 135, NsBody(Gateway6), dstMac: 0x3333_FF00_0002),
        Icmpv6Frame(Guest6, Gateway6, 128, new byte[20], hopLimit: 64),
    ];

    [Property(MaxTest = 300)]
    public void RandomFrames_NeverThrow_AndRepliesAreWellFormed(byte[][] frames, bool vnet)
    {
        var inputs = new List<byte[]>();
        foreach (var f in frames ?? [])
        {
            if (f is null)
            {
                continue;
            }

            var copy = (byte[])f.Clone();
            Confine(copy, vnet);
            inputs.Add(copy);
        }

        RunAndCheck(inputs, vnet);
    }

    [Property(MaxTest = 500)]
    public void MutatedValidFrames_NeverThrow_AndRepliesAreWellFormed(int[] picks, int[] mutations, bool vnet, bool fixChecksums)
    {
        var inputs = new List<byte[]>();
        int m = 0;
        foreach (int pick in picks ?? [])
        {
            var frame = Seeds[(int)((uint)pick % Seeds.Length)];
            frame = vnet ? WithVnet(frame, flags: (byte)((pick >> 8) & 3)) : (byte[])frame.Clone();
            int count = (pick >> 12) & 3;
            for (int i = 0; i < count && mutations is { Length: > 0 }; i++)
            {
                frame = Mutate(frame, mutations[m++ % mutations.Length]);
            }

            Confine(frame, vnet);
            if (fixChecksums)
            {
                FixChecksums(frame, vnet ? 10 : 0);
            }

            inputs.Add(frame);
        }

        RunAndCheck(inputs, vnet);
    }

    [Fact]
    public void SeedFrames_AreAnsweredWhereExpected()
    {
        // Guards the property above against seeds that silently stopped reaching the stack's handlers.
        using var ctx = new StackTestContext(ipv6: true, configure: o => o.DisableHostLoopback = true);
        int answered = 0;
        foreach (var seed in Seeds)
        {
            answered += ctx.ExchangeEthernet(seed).Count;
        }

        Assert.Equal(0, ctx.Counters.MalformedFrames + ctx.Counters.BadChecksums);
        Assert.True(answered >= 8, $"only {answered} replies");
    }

    private static void RunAndCheck(List<byte[]> inputs, bool vnet)
    {
        using var ctx = new StackTestContext(vnet: vnet, ipv6: true, configure: o => o.DisableHostLoopback = true);
        foreach (var frame in inputs)
        {
            ctx.InjectRaw(frame);
        }

        for (int guard = 0; ctx.Link.PendingInbound > 0 && guard < 1000; guard++)
        {
            ctx.Stack.PumpOnce();
        }

        ctx.Stack.PumpOnce();
        Assert.Equal(inputs.Count(f => f.Length > 0), ctx.Counters.FramesReceived);
        foreach (var emitted in ctx.Link.TakeAll())
        {
            EmittedFrameChecker.AssertWellFormed(emitted, vnet);
        }
    }

    private static byte[] NsBody(UInt128 target)
    {
        var body = new byte[4 + 16 + 8];
        BinaryPrimitives.WriteUInt128BigEndian(body.AsSpan(4), target);
        body[20] = 1;
        body[21] = 1;
        WriteMac(body.AsSpan(22), GuestMac);
        return body;
    }

    private static byte[] Mutate(byte[] frame, int op)
    {
        int pos = frame.Length == 0 ? 0 : (int)((uint)op >> 3) % frame.Length;
        switch (op & 7)
        {
            case 0:
            case 1:
            case 2:
                if (frame.Length > 0)
                {
                    frame[pos] ^= (byte)(1 << ((op >> 20) & 7));
                }

                return frame;
            case 3:
                if (frame.Length > 0)
                {
                    frame[pos] = (byte)(op >> 24);
                }

                return frame;
            case 4:
                return frame[..pos];
            case 5:
                var longer = new byte[frame.Length + ((op >> 3) & 63)];
                frame.CopyTo(longer, 0);
                return longer;
            default:
                if (frame.Length > 1)
                {
                    frame[pos] = (op & 8) != 0 ? (byte)0xFF : (byte)0;
                }

                return frame;
        }
    }

    /// <summary>Keeps every IP destination inside the virtual network (or multicast/link-local, never forwarded).</summary>
    private static void Confine(byte[] frame, bool vnet)
    {
        int eth = vnet ? 10 : 0;
        if (frame.Length < eth + 14)
        {
            return;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(eth + 12));
        int ip = eth + 14;
        if (type == 0x0800 && frame.Length >= ip + 20)
        {
            uint dst = BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(ip + 16));
            if ((dst & 0xFFFF_FF00) != 0x0A00_0200 && dst != uint.MaxValue)
            {
                BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(ip + 16), 0x0A00_0200 | (dst & 0xFF));
            }
        }
        else if (type == 0x86DD && frame.Length >= ip + 40)
        {
            var dst = BinaryPrimitives.ReadUInt128BigEndian(frame.AsSpan(ip + 24));
            bool multicast = (byte)(dst >> 120) == 0xFF;
            bool linkLocal = (ushort)(dst >> 112) == 0xFE80;
            bool inPrefix = (ulong)(dst >> 64) == 0xFD00_0000_0000_0000UL;
            if (!multicast && !linkLocal && !inPrefix)
            {
                BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(ip + 24), 0xFD00_0000_0000_0000UL);
            }
        }
    }

    /// <summary>Recomputes IP and transport checksums so mutations reach past the checksum checks.</summary>
    private static void FixChecksums(byte[] frame, int eth)
    {
        if (frame.Length < eth + 14)
        {
            return;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(eth + 12));
        var p = frame.AsSpan(eth + 14);
        if (type == 0x0800 && p.Length >= 20)
        {
            int ihl = (p[0] & 0xF) * 4;
            int total = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
            if (ihl < 20 || ihl > p.Length)
            {
                return;
            }

            p[10] = 0;
            p[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(p[10..], InternetChecksum.Compute(p[..ihl]));
            if (total < ihl || total > p.Length)
            {
                return;
            }

            var l4 = p[ihl..total];
            uint src = BinaryPrimitives.ReadUInt32BigEndian(p[12..]);
            uint dst = BinaryPrimitives.ReadUInt32BigEndian(p[16..]);
            var protocol = (IpProtocol)p[9];
            int field = ChecksumField(protocol);
            if (field < 0 || l4.Length < field + 2)
            {
                return;
            }

            if (protocol == IpProtocol.Icmp)
            {
                l4[2] = 0;
                l4[3] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(l4[2..], InternetChecksum.Compute(l4));
            }
            else
            {
                FillTransportChecksum4(src, dst, protocol, l4, field);
            }
        }
        else if (type == 0x86DD && p.Length >= 40)
        {
            int end = 40 + BinaryPrimitives.ReadUInt16BigEndian(p[4..]);
            var protocol = (IpProtocol)p[6];
            int field = ChecksumField(protocol);
            if (end > p.Length || field < 0 || end - 40 < field + 2)
            {
                return;
            }

            var l4 = p[40..end];
            l4[field] = 0;
            l4[field + 1] = 0;
            uint pseudo = Pseudo6(BinaryPrimitives.ReadUInt128BigEndian(p[8..]), BinaryPrimitives.ReadUInt128BigEndian(p[24..]), protocol, l4.Length);
            BinaryPrimitives.WriteUInt16BigEndian(l4[field..], InternetChecksum.Fold(InternetChecksum.Sum(l4, pseudo)));
        }
    }

    private static int ChecksumField(IpProtocol protocol) => protocol switch
    {
        IpProtocol.Tcp => 16,
        IpProtocol.Udp => 6,
        IpProtocol.Icmp or IpProtocol.Icmpv6 => 2,
        _ => -1,
    };
}
