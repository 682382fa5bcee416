using Beemesh.Netstack.Wire;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Wire;

/// <summary>
/// Every TryCreate/TryParse is fed arbitrary bytes and mutated real packets: it must never throw, and when it
/// succeeds every accessor must stay inside the input.
/// </summary>
public class ParserPropertyTests
{
    private const int Tests = 500;

    // Applies up to three (position, xor) pairs from the mask and, half of the time, cuts the tail, so most
    // inputs are almost valid and reach the accessors.
    internal static byte[] Mutate(byte[] golden, byte[] mask, byte cut)
    {
        byte[] data = (byte[])golden.Clone();
        for (int i = 0; i + 1 < Math.Min(mask.Length, 6); i += 2)
        {
            data[mask[i] % data.Length] ^= mask[i + 1];
        }

        return cut < 128 ? data : data[..(data.Length - (cut % (data.Length + 1)))];
    }

    private static byte[] Input(byte[] golden, byte[] mask, byte cut, bool useRaw) => useRaw ? mask : Mutate(golden, mask, cut);

    [Property(MaxTest = Tests)]
    public void Ethernet(byte[] mask, byte cut, bool raw)
    {
        byte[] data = Input(Captures.TcpSyn, mask, cut, raw);
        if (EthernetFrame.TryCreate(data, out EthernetFrame frame))
        {
            _ = frame.Destination;
            _ = frame.Source;
            _ = frame.EtherType;
            Assert.Equal(data.Length - 14, frame.Payload.Length);
            Assert.True(EthernetRepr.TryParse(frame, out EthernetRepr repr));
            byte[] emitted = new byte[14];
            repr.Emit(emitted);
            Assert.Equal(data[..14], emitted);
        }
    }

    [Property(MaxTest = Tests)]
    public void Arp(byte[] mask, byte cut, bool raw)
    {
        byte[] golden = Hex.Bytes("0001 0800 0604 0002 5255 0a00 0202 0a00 0202 5255 0a00 0264 0a00 0264");
        byte[] data = Input(golden, mask, cut, raw);
        if (ArpPacket.TryCreate(data, out ArpPacket packet))
        {
            Assert.Equal(ArpPacket.Length, packet.Buffer.Length);
            _ = packet.SenderMac;
            _ = packet.TargetIp;
            if (ArpRepr.TryParse(packet, out ArpRepr repr))
            {
                byte[] emitted = new byte[ArpPacket.Length];
                repr.Emit(emitted);
                Assert.Equal(data[..ArpPacket.Length], emitted);
            }
        }
    }

    [Property(MaxTest = Tests)]
    public void Ipv4(byte[] mask, byte cut, bool raw)
    {
        byte[] data = Input(Captures.TcpSyn[14..], mask, cut, raw);
        if (Ipv4Packet.TryCreate(data, out Ipv4Packet packet))
        {
            Assert.True(packet.HeaderLength >= 20);
            Assert.True(packet.TotalLength <= data.Length);
            Assert.Equal(packet.TotalLength - packet.HeaderLength, packet.Payload.Length);
            Assert.Equal(packet.HeaderLength - 20, packet.Options.Length);
            _ = packet.IsFragment;
            _ = packet.Source;
            _ = packet.Destination;
            _ = packet.Dscp;
            _ = packet.FragmentOffset;
            bool valid = packet.VerifyChecksum();
            Assert.Equal(valid, Ipv4Repr.TryParse(packet, out _));
            Assert.True(Ipv4Repr.TryParse(packet, out Ipv4Repr repr, verifyChecksum: false));
            byte[] emitted = new byte[repr.BufferLength];
            repr.Emit(emitted);
            Assert.True(Ipv4Packet.TryCreate(emitted, out Ipv4Packet again));
            Assert.True(Ipv4Repr.TryParse(again, out Ipv4Repr reparsed));
            Assert.Equal(repr, reparsed);
        }
    }

    [Property(MaxTest = Tests)]
    public void Ipv6(byte[] mask, byte cut, bool raw)
    {
        byte[] golden = new byte[40 + 8 + 8 + 8];
        new Ipv6Repr(Ipv6Address.Loopback, Ipv6Address.Loopback, IpProtocol.Ipv6HopByHop, 24).Emit(golden);
        golden[40] = (byte)IpProtocol.Ipv6Opts;
        golden[48] = (byte)IpProtocol.Udp;
        byte[] data = Input(golden, mask, cut, raw);
        bool created = Ipv6Packet.TryCreate(data, out Ipv6Packet packet);
        bool found = Ipv6Packet.TryFindUpperLayer(data, out _, out int offset);
        if (found)
        {
            Assert.True(created);
            Assert.InRange(offset, 40, 40 + packet.PayloadLength);
        }

        if (created)
        {
            Assert.True(40 + packet.PayloadLength <= data.Length);
            Assert.Equal(packet.PayloadLength, packet.Payload.Length);
            _ = packet.FlowLabel;
            _ = packet.TrafficClass;
            Assert.True(Ipv6Repr.TryParse(packet, out Ipv6Repr repr));
            byte[] emitted = new byte[40];
            repr.Emit(emitted);
            Assert.Equal(data[..40], emitted);
        }
    }

    [Property(MaxTest = Tests)]
    public void Udp(byte[] mask, byte cut, bool raw)
    {
        byte[] data = Input(Captures.Udp4[34..], mask, cut, raw);
        if (UdpPacket.TryCreate(data, out UdpPacket packet))
        {
            Assert.InRange(packet.Length, 8, data.Length);
            Assert.Equal(packet.Length - 8, packet.Payload.Length);
            _ = packet.VerifyChecksumV4(Ipv4Address.Loopback, Ipv4Address.Loopback);
            _ = packet.VerifyChecksumV6(Ipv6Address.Loopback, Ipv6Address.Loopback);
            if (UdpRepr.TryParse(packet, out UdpRepr repr))
            {
                byte[] emitted = new byte[8];
                repr.Emit(emitted);
                Assert.Equal(data[..6], emitted[..6]);
            }
        }
    }

    [Property(MaxTest = Tests)]
    public void Tcp(byte[] mask, byte cut, bool raw)
    {
        byte[] data = Input(Captures.TcpSyn[34..], mask, cut, raw);
        if (TcpPacket.TryCreate(data, out TcpPacket packet))
        {
            Assert.InRange(packet.HeaderLength, 20, data.Length);
            Assert.Equal(data.Length, packet.HeaderLength + packet.Payload.Length);
            Assert.Equal(packet.HeaderLength - 20, packet.Options.Length);
            _ = packet.Flags;
            _ = packet.VerifyChecksumV4(Ipv4Address.Loopback, Ipv4Address.Loopback);
            if (packet.TryReadOptions(out TcpOptions options))
            {
                Assert.InRange(options.SackCount, 0, 4);
                Assert.InRange(TcpPacket.OptionsLength(options), 0, 40);
                byte[] written = new byte[40];
                int length = TcpPacket.WriteOptions(options, written);
                Assert.Equal(0, length % 4);
                Assert.True(TcpPacket.TryReadOptions(written.AsSpan(0, length), out TcpOptions reread));
                Assert.Equal(options.Mss, reread.Mss);
                Assert.Equal(options.HasTimestamp, reread.HasTimestamp);
                Assert.Equal(options.TsVal, reread.TsVal);
                Assert.Equal(options.WindowScale, reread.WindowScale);
                Assert.True(reread.SackCount <= options.SackCount);
            }

            if (TcpRepr.TryParse(packet, out TcpRepr repr))
            {
                byte[] emitted = new byte[repr.HeaderLength];
                repr.Emit(emitted);
                Assert.Equal(data[..12], emitted[..12]);
                Assert.Equal(data[13..20], emitted[13..20].Select((b, i) => i is 3 or 4 ? data[13 + i] : b).ToArray());
            }
        }
    }

    [Property(MaxTest = Tests)]
    public void Icmpv4(byte[] mask, byte cut, bool raw)
    {
        byte[] data = Input(Captures.Icmp4PortUnreachable[34..], mask, cut, raw);
        if (Icmpv4Packet.TryCreate(data, out Icmpv4Packet packet))
        {
            Assert.Equal(data.Length - 8, packet.Payload.Length);
            _ = packet.Type;
            _ = packet.RestOfHeader;
            if (Icmpv4Repr.TryParse(packet, out Icmpv4Repr repr))
            {
                byte[] copy = (byte[])data.Clone();
                repr.Emit(copy);
                Assert.Equal(data[..2], copy[..2]);
                Assert.True(Icmpv4Packet.TryCreate(copy, out Icmpv4Packet again));
                Assert.True(again.VerifyChecksum());
            }
        }
    }

    [Property(MaxTest = Tests)]
    public void Icmpv6AndNdp(byte[] mask, byte cut, bool raw, byte which)
    {
        byte[][] goldens =
        [
            Hex.Bytes("870073a000000000fd0000000000000000000000000000020101525400123456"),
            Hex.Bytes("88003b0960000000fd000000000000000000000000000002020152550a000202"),
            Hex.Bytes("8600e39a4040070800000000000003e8010152550a00020205010000000005dc030440c0000151800000384000000000fd0000000000000000000000000000001903000000000258fd000000000000000000000000000003"),
        ];
        byte[] data = Input(goldens[which % 3], mask, cut, raw);
        if (!Icmpv6Packet.TryCreate(data, out Icmpv6Packet packet))
        {
            Assert.True(data.Length < 8);
            return;
        }

        _ = packet.Word;
        Assert.Equal(data.Length - 4, packet.MessageBody.Length);
        _ = packet.VerifyChecksum(Ipv6Address.Loopback, Ipv6Address.AllNodes);
        if (NdpNeighborSolicitation.TryCreate(data, out NdpNeighborSolicitation ns))
        {
            _ = ns.TargetAddress;
            _ = ns.TryGetSourceLinkLayerAddress(out _);
            Assert.True(NdpNeighborSolicitationRepr.TryParse(ns, out NdpNeighborSolicitationRepr repr));
            byte[] emitted = new byte[repr.BufferLength];
            repr.Emit(emitted, Ipv6Address.Loopback, Ipv6Address.AllNodes);
            Assert.True(NdpNeighborSolicitation.TryCreate(emitted, out NdpNeighborSolicitation again));
            Assert.True(NdpNeighborSolicitationRepr.TryParse(again, out NdpNeighborSolicitationRepr reparsed));
            Assert.Equal(repr, reparsed);
        }

        if (NdpNeighborAdvertisement.TryCreate(data, out NdpNeighborAdvertisement na))
        {
            _ = na.TargetAddress;
            _ = na.IsRouter;
            Assert.True(NdpNeighborAdvertisementRepr.TryParse(na, out NdpNeighborAdvertisementRepr repr));
            byte[] emitted = new byte[repr.BufferLength];
            repr.Emit(emitted, Ipv6Address.Loopback, Ipv6Address.AllNodes);
            Assert.True(NdpNeighborAdvertisement.TryCreate(emitted, out NdpNeighborAdvertisement again));
            Assert.True(NdpNeighborAdvertisementRepr.TryParse(again, out NdpNeighborAdvertisementRepr reparsed));
            Assert.Equal(repr, reparsed);
        }

        if (NdpRouterAdvertisementRepr.TryParse(packet, out NdpRouterAdvertisementRepr ra))
        {
            byte[] emitted = new byte[ra.BufferLength];
            ra.Emit(emitted, Ipv6Address.Loopback, Ipv6Address.AllNodes);
            Assert.True(Icmpv6Packet.TryCreate(emitted, out Icmpv6Packet again));
            Assert.True(again.VerifyChecksum(Ipv6Address.Loopback, Ipv6Address.AllNodes));
            Assert.True(NdpRouterAdvertisementRepr.TryParse(again, out NdpRouterAdvertisementRepr reparsed));
            Assert.Equal(ra, reparsed);
        }

        if (Icmpv6Repr.TryParse(packet, Ipv6Address.Loopback, Ipv6Address.AllNodes, out Icmpv6Repr icmpRepr))
        {
            Assert.Equal(data.Length - 8, icmpRepr.PayloadLength);
        }
    }

    [Property(MaxTest = Tests)]
    public void NdpOptions(byte[] options)
    {
        NdpOptionReader reader = new(options);
        int total = 0;
        while (reader.MoveNext())
        {
            Assert.True(reader.LengthUnits > 0);
            total += reader.Current.Length;
        }

        Assert.True(total <= options.Length);
        Assert.Equal(!reader.IsInvalid, NdpOptionReader.Validate(options));
        Assert.Equal(!reader.IsInvalid && total == options.Length, NdpOptionReader.Validate(options));
        _ = NdpOptionReader.TryFindLinkLayerAddress(options, NdpOptionType.SourceLinkLayerAddress, out _);
    }

    [Property(MaxTest = Tests)]
    public void VirtioNet(byte[] data)
    {
        if (VirtioNetHeader.TryCreate(data, out VirtioNetHeader header))
        {
            Assert.Equal(data.Length - 10, header.Payload.Length);
            if (VirtioNetHeaderRepr.TryParse(header, out VirtioNetHeaderRepr repr))
            {
                byte[] emitted = new byte[10];
                repr.Emit(emitted);
                Assert.Equal(data[..10], emitted);
            }
        }
        else
        {
            Assert.True(data.Length < 10);
        }
    }

    [Property(MaxTest = Tests)]
    public void AddressesParse(string? text)
    {
        if (MacAddress.TryParse(text, out MacAddress mac))
        {
            Assert.Equal(text!.ToLowerInvariant().Replace('-', ':'), mac.ToString());
        }

        if (Ipv4Address.TryParse(text, out Ipv4Address v4))
        {
            Assert.Equal(text, v4.ToString());
        }

        if (Ipv6Address.TryParse(text, out Ipv6Address v6))
        {
            Assert.Equal(v6, Ipv6Address.Parse(v6.ToString()));
        }
    }

    [Fact]
    public void MutatedInputsMostlyStayParseable()
    {
        // Guards the properties above: if mutation broke nearly every input, they would only test rejection.
        Random random = new(7);
        int ipv4 = 0, tcp = 0, udp = 0;
        for (int i = 0; i < 1000; i++)
        {
            byte[] mask = new byte[random.Next(0, 8)];
            random.NextBytes(mask);
            byte cut = (byte)random.Next(256);
            ipv4 += Ipv4Packet.TryCreate(Mutate(Captures.TcpSyn[14..], mask, cut), out _) ? 1 : 0;
            tcp += TcpPacket.TryCreate(Mutate(Captures.TcpSyn[34..], mask, cut), out TcpPacket p) && p.TryReadOptions(out _) ? 1 : 0;
            udp += UdpPacket.TryCreate(Mutate(Captures.Udp4[34..], mask, cut), out _) ? 1 : 0;
        }

        Assert.InRange(ipv4, 300, 1000);
        Assert.InRange(tcp, 300, 1000);
        Assert.InRange(udp, 300, 1000);
    }
}
