using Beemesh.Netstack.Wire;

namespace Beemesh.Netstack.Tests.Wire;

/// <summary>
/// Messages laid out by hand from RFC 4861 §4.2–4.4 and RFC 8106 §5.1, checksums computed by an independent
/// script over the RFC 8200 §8.1 pseudo-header.
/// </summary>
public class NdpTests
{
    private static readonly Ipv6Address GuestLinkLocal = Ipv6Address.Parse("fe80::5054:ff:fe12:3456");
    private static readonly Ipv6Address Gateway = Ipv6Address.Parse("fd00::2");
    private static readonly Ipv6Address RouterLinkLocal = Ipv6Address.Parse("fe80::2");

    // NS from the guest for fd00::2 to ff02::1:ff00:2 with SLLA 52:54:00:12:34:56.
    private static byte[] Solicitation => Hex.Bytes("870073a000000000fd0000000000000000000000000000020101525400123456");

    // NA from fd00::2 to the guest, S|O, TLLA 52:55:0a:00:02:02.
    private static byte[] Advertisement => Hex.Bytes("88003b0960000000fd000000000000000000000000000002020152550a000202");

    // RA from fe80::2 to ff02::1: hop limit 64, O, lifetime 1800 s, retrans 1000 ms, SLLA, MTU 1500,
    // prefix fd00::/64 L|A valid 86400 preferred 14400, RDNSS fd00::3 lifetime 600.
    private static byte[] RouterAdvertisement => Hex.Bytes("""
        8600e39a4040070800000000000003e8
        010152550a000202
        05010000000005dc
        030440c0000151800000384000000000fd000000000000000000000000000000
        1903000000000258fd000000000000000000000000000003
        """);

    [Fact]
    public void ParsesAndEmitsNeighborSolicitation()
    {
        byte[] bytes = Solicitation;
        Assert.True(Icmpv6Packet.TryCreate(bytes, out Icmpv6Packet icmp));
        Assert.True(icmp.VerifyChecksum(GuestLinkLocal, Gateway.SolicitedNodeMulticast()));
        Assert.True(NdpNeighborSolicitation.TryCreate(bytes, out NdpNeighborSolicitation ns));
        Assert.Equal(Gateway, ns.TargetAddress);
        Assert.True(ns.TryGetSourceLinkLayerAddress(out MacAddress mac));
        Assert.Equal(MacAddress.Parse("52:54:00:12:34:56"), mac);
        Assert.True(NdpNeighborSolicitationRepr.TryParse(ns, out NdpNeighborSolicitationRepr repr));

        byte[] emitted = new byte[repr.BufferLength];
        repr.Emit(emitted, GuestLinkLocal, Gateway.SolicitedNodeMulticast());
        Assert.Equal(bytes, emitted);
    }

    [Fact]
    public void ParsesAndEmitsNeighborAdvertisement()
    {
        byte[] bytes = Advertisement;
        Assert.True(NdpNeighborAdvertisement.TryCreate(bytes, out NdpNeighborAdvertisement na));
        Assert.Equal(NdpNeighborFlags.Solicited | NdpNeighborFlags.Override, na.Flags);
        Assert.False(na.IsRouter);
        Assert.True(na.IsSolicited);
        Assert.True(na.IsOverride);
        Assert.Equal(Gateway, na.TargetAddress);
        Assert.True(na.TryGetTargetLinkLayerAddress(out MacAddress mac));
        Assert.Equal(MacAddress.Parse("52:55:0a:00:02:02"), mac);
        Assert.True(NdpNeighborAdvertisementRepr.TryParse(na, out NdpNeighborAdvertisementRepr repr));

        byte[] emitted = new byte[repr.BufferLength];
        repr.Emit(emitted, Gateway, GuestLinkLocal);
        Assert.Equal(bytes, emitted);
    }

    [Fact]
    public void ParsesAndEmitsRouterAdvertisement()
    {
        byte[] bytes = RouterAdvertisement;
        Assert.True(Icmpv6Packet.TryCreate(bytes, out Icmpv6Packet icmp));
        Assert.True(icmp.VerifyChecksum(RouterLinkLocal, Ipv6Address.AllNodes));
        Assert.True(NdpRouterAdvertisementRepr.TryParse(icmp, out NdpRouterAdvertisementRepr repr));
        NdpRouterAdvertisementRepr expected = new()
        {
            CurHopLimit = 64,
            OtherConfiguration = true,
            RouterLifetime = 1800,
            RetransTimer = 1000,
            SourceLinkLayerAddress = MacAddress.Parse("52:55:0a:00:02:02"),
            Mtu = 1500,
            HasPrefix = true,
            Prefix = Ipv6Address.Parse("fd00::"),
            PrefixLength = 64,
            OnLink = true,
            Autonomous = true,
            ValidLifetime = 86400,
            PreferredLifetime = 14400,
            DnsServer = Ipv6Address.Parse("fd00::3"),
            DnsLifetime = 600,
        };
        Assert.Equal(expected, repr);
        Assert.Equal(bytes.Length, repr.BufferLength);

        byte[] emitted = new byte[repr.BufferLength];
        expected.Emit(emitted, RouterLinkLocal, Ipv6Address.AllNodes);
        Assert.Equal(bytes, emitted);
    }

    [Fact]
    public void ZeroLengthOptionInvalidatesTheMessage()
    {
        byte[] bytes = Solicitation;
        bytes[25] = 0;
        Assert.False(NdpNeighborSolicitation.TryCreate(bytes, out _));

        bytes = RouterAdvertisement;
        bytes[16 + 8 + 1] = 0; // MTU option length 0
        Assert.True(Icmpv6Packet.TryCreate(bytes, out Icmpv6Packet icmp));
        Assert.False(NdpRouterAdvertisementRepr.TryParse(icmp, out _));
    }

    [Fact]
    public void OptionReaderIteratesAndStopsOnOverrun()
    {
        byte[] options = RouterAdvertisement[16..];
        NdpOptionReader reader = new(options);
        List<(NdpOptionType, int)> seen = [];
        while (reader.MoveNext())
        {
            seen.Add((reader.Type, reader.LengthUnits));
        }

        Assert.False(reader.IsInvalid);
        Assert.Equal(
            [(NdpOptionType.SourceLinkLayerAddress, 1), (NdpOptionType.Mtu, 1), (NdpOptionType.PrefixInformation, 4), (NdpOptionType.RecursiveDnsServer, 3)],
            seen);

        Assert.False(NdpOptionReader.Validate(options.AsSpan(0, options.Length - 1)));
        Assert.False(NdpOptionReader.Validate(options.AsSpan(0, 1)));
        Assert.True(NdpOptionReader.Validate([]));
        Assert.False(NdpOptionReader.TryFindLinkLayerAddress(options, NdpOptionType.TargetLinkLayerAddress, out _));
    }

    [Fact]
    public void WrongTypeOrCodeIsNotAnNdpMessage()
    {
        Assert.False(NdpNeighborAdvertisement.TryCreate(Solicitation, out _));
        Assert.False(NdpNeighborSolicitation.TryCreate(Advertisement, out _));
        byte[] bytes = Solicitation;
        bytes[1] = 1;
        Assert.False(NdpNeighborSolicitation.TryCreate(bytes, out _));
        Assert.True(Icmpv6Packet.TryCreate(Solicitation, out Icmpv6Packet icmp));
        Assert.False(NdpRouterAdvertisementRepr.TryParse(icmp, out _));
    }
}
