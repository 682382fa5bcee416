using System.Buffers.Binary;

namespace Beemesh.Netstack.Wire;

/// <summary>
/// A router advertisement (RFC 4861 §4.2) with the options Beemesh sends: source link-layer address, MTU, one
/// prefix information option and one RDNSS server (RFC 8106). Parsing keeps the first of each option.
/// </summary>
public readonly record struct NdpRouterAdvertisementRepr : IIcmpv6MessageRepr
{
    private const int FixedLength = 16;
    private const int MtuOptionLength = 8;
    private const int PrefixOptionLength = 32;
    private const int RdnssOptionLength = 24;
    private const byte FlagManaged = 0x80;
    private const byte FlagOther = 0x40;
    private const byte FlagOnLink = 0x80;
    private const byte FlagAutonomous = 0x40;

    /// <summary>Cur Hop Limit for hosts; 0 = unspecified.</summary>
    public byte CurHopLimit { get; init; }

    /// <summary>M: addresses via DHCPv6.</summary>
    public bool Managed { get; init; }

    /// <summary>O: other configuration via DHCPv6.</summary>
    public bool OtherConfiguration { get; init; }

    /// <summary>Router lifetime in seconds; 0 = not a default router.</summary>
    public ushort RouterLifetime { get; init; }

    /// <summary>Reachable time in milliseconds; 0 = unspecified.</summary>
    public uint ReachableTime { get; init; }

    /// <summary>Retransmission timer in milliseconds; 0 = unspecified.</summary>
    public uint RetransTimer { get; init; }

    /// <summary>Router's MAC (source link-layer address option).</summary>
    public MacAddress? SourceLinkLayerAddress { get; init; }

    /// <summary>Link MTU option; 0 = absent.</summary>
    public uint Mtu { get; init; }

    /// <summary>True when a prefix information option is present.</summary>
    public bool HasPrefix { get; init; }

    /// <summary>The advertised prefix.</summary>
    public Ipv6Address Prefix { get; init; }

    /// <summary>Prefix length in bits.</summary>
    public byte PrefixLength { get; init; }

    /// <summary>L: the prefix is on-link.</summary>
    public bool OnLink { get; init; }

    /// <summary>A: usable for SLAAC.</summary>
    public bool Autonomous { get; init; }

    /// <summary>Valid lifetime in seconds (0xFFFFFFFF = infinity).</summary>
    public uint ValidLifetime { get; init; }

    /// <summary>Preferred lifetime in seconds.</summary>
    public uint PreferredLifetime { get; init; }

    /// <summary>The recursive DNS server (RDNSS option), absent when null.</summary>
    public Ipv6Address? DnsServer { get; init; }

    /// <summary>RDNSS lifetime in seconds.</summary>
    public uint DnsLifetime { get; init; }

    /// <summary>Bytes <see cref="Emit"/> writes (the whole ICMPv6 message).</summary>
    public int BufferLength =>
        FixedLength
        + (SourceLinkLayerAddress.HasValue ? NdpLinkLayerOption.Length : 0)
        + (Mtu != 0 ? MtuOptionLength : 0)
        + (HasPrefix ? PrefixOptionLength : 0)
        + (DnsServer.HasValue ? RdnssOptionLength : 0);

    /// <summary>
    /// Parses a router advertisement: type 134, code 0, at least 16 bytes, well-formed options (RFC 4861 §6.1.2).
    /// The checksum is the caller's to verify (it needs the IPv6 addresses).
    /// </summary>
    public static bool TryParse(Icmpv6Packet packet, out NdpRouterAdvertisementRepr repr)
    {
        repr = default;
        ReadOnlySpan<byte> message = packet.Buffer;
        if (message.Length < FixedLength || packet.Type != Icmpv6Type.RouterAdvertisement || packet.Code != 0)
        {
            return false;
        }

        NdpRouterAdvertisementRepr result = new()
        {
            CurHopLimit = message[Field.CurHopLimit],
            Managed = (message[Field.Flags] & FlagManaged) != 0,
            OtherConfiguration = (message[Field.Flags] & FlagOther) != 0,
            RouterLifetime = BinaryPrimitives.ReadUInt16BigEndian(message.Slice(Field.RouterLifetime, Field.RouterLifetimeSize)),
            ReachableTime = BinaryPrimitives.ReadUInt32BigEndian(message.Slice(Field.ReachableTime, Field.ReachableTimeSize)),
            RetransTimer = BinaryPrimitives.ReadUInt32BigEndian(message.Slice(Field.RetransTimer, Field.RetransTimerSize)),
        };

        NdpOptionReader reader = new(message[FixedLength..]);
        while (reader.MoveNext())
        {
            ReadOnlySpan<byte> option = reader.Current;
            switch (reader.Type)
            {
                case NdpOptionType.SourceLinkLayerAddress when result.SourceLinkLayerAddress is null:
                    result = result with { SourceLinkLayerAddress = MacAddress.ReadFrom(option.Slice(OptionField.LinkLayerAddress, OptionField.LinkLayerAddressSize)) };
                    break;
                case NdpOptionType.Mtu when result.Mtu == 0:
                    result = result with { Mtu = BinaryPrimitives.ReadUInt32BigEndian(option.Slice(OptionField.Mtu, OptionField.MtuSize)) };
                    break;
                case NdpOptionType.PrefixInformation when !result.HasPrefix && option.Length >= PrefixOptionLength:
                    result = result with
                    {
                        HasPrefix = true,
                        PrefixLength = option[OptionField.PrefixLength],
                        OnLink = (option[OptionField.PrefixFlags] & FlagOnLink) != 0,
                        Autonomous = (option[OptionField.PrefixFlags] & FlagAutonomous) != 0,
                        ValidLifetime = BinaryPrimitives.ReadUInt32BigEndian(option.Slice(OptionField.ValidLifetime, OptionField.ValidLifetimeSize)),
                        PreferredLifetime = BinaryPrimitives.ReadUInt32BigEndian(option.Slice(OptionField.PreferredLifetime, OptionField.PreferredLifetimeSize)),
                        Prefix = Ipv6Address.ReadFrom(option.Slice(OptionField.Prefix, OptionField.PrefixSize)),
                    };
                    break;
                case NdpOptionType.RecursiveDnsServer when result.DnsServer is null && option.Length >= RdnssOptionLength:
                    // RFC 8106 §5.1: length 3 + 2n; the first server follows the 8-byte option header.
                    result = result with
                    {
                        DnsLifetime = BinaryPrimitives.ReadUInt32BigEndian(option.Slice(OptionField.DnsLifetime, OptionField.DnsLifetimeSize)),
                        DnsServer = Ipv6Address.ReadFrom(option.Slice(OptionField.DnsServer, OptionField.DnsServerSize)),
                    };
                    break;
                default:
                    break;
            }
        }

        if (reader.IsInvalid)
        {
            return false;
        }

        repr = result;
        return true;
    }

    /// <summary>Writes the whole ICMPv6 message, checksum included, for the given IPv6 source and destination.</summary>
    public void Emit(Span<byte> buffer, Ipv6Address source, Ipv6Address destination)
    {
        int length = BufferLength;
        if (buffer.Length < length)
        {
            WireThrowHelper.BufferTooSmall("router advertisement", length, buffer.Length);
        }

        Span<byte> message = buffer[..length];
        message.Clear();
        Icmpv6Packet icmp = Icmpv6Packet.CreateUnchecked(message);
        icmp.Type = Icmpv6Type.RouterAdvertisement;
        message[Field.CurHopLimit] = CurHopLimit;
        message[Field.Flags] = (byte)((Managed ? FlagManaged : 0) | (OtherConfiguration ? FlagOther : 0));
        BinaryPrimitives.WriteUInt16BigEndian(message.Slice(Field.RouterLifetime, Field.RouterLifetimeSize), RouterLifetime);
        BinaryPrimitives.WriteUInt32BigEndian(message.Slice(Field.ReachableTime, Field.ReachableTimeSize), ReachableTime);
        BinaryPrimitives.WriteUInt32BigEndian(message.Slice(Field.RetransTimer, Field.RetransTimerSize), RetransTimer);

        int at = FixedLength;
        if (SourceLinkLayerAddress is MacAddress mac)
        {
            NdpLinkLayerOption.Write(message[at..], NdpOptionType.SourceLinkLayerAddress, mac);
            at += NdpLinkLayerOption.Length;
        }

        if (Mtu != 0)
        {
            Span<byte> option = message.Slice(at, MtuOptionLength);
            option[OptionField.Type] = (byte)NdpOptionType.Mtu;
            option[OptionField.Length] = MtuOptionLength / 8;
            BinaryPrimitives.WriteUInt32BigEndian(option.Slice(OptionField.Mtu, OptionField.MtuSize), Mtu);
            at += MtuOptionLength;
        }

        if (HasPrefix)
        {
            Span<byte> option = message.Slice(at, PrefixOptionLength);
            option[OptionField.Type] = (byte)NdpOptionType.PrefixInformation;
            option[OptionField.Length] = PrefixOptionLength / 8;
            option[OptionField.PrefixLength] = PrefixLength;
            option[OptionField.PrefixFlags] = (byte)((OnLink ? FlagOnLink : 0) | (Autonomous ? FlagAutonomous : 0));
            BinaryPrimitives.WriteUInt32BigEndian(option.Slice(OptionField.ValidLifetime, OptionField.ValidLifetimeSize), ValidLifetime);
            BinaryPrimitives.WriteUInt32BigEndian(option.Slice(OptionField.PreferredLifetime, OptionField.PreferredLifetimeSize), PreferredLifetime);
            Prefix.CopyTo(option.Slice(OptionField.Prefix, OptionField.PrefixSize));
            at += PrefixOptionLength;
        }

        if (DnsServer is Ipv6Address dns)
        {
            Span<byte> option = message.Slice(at, RdnssOptionLength);
            option[OptionField.Type] = (byte)NdpOptionType.RecursiveDnsServer;
            option[OptionField.Length] = RdnssOptionLength / 8;
            BinaryPrimitives.WriteUInt32BigEndian(option.Slice(OptionField.DnsLifetime, OptionField.DnsLifetimeSize), DnsLifetime);
            dns.CopyTo(option.Slice(OptionField.DnsServer, OptionField.DnsServerSize));
        }

        icmp.FillChecksum(source, destination);
    }

    // RFC 4861 §4.2: the fixed part after the ICMPv6 type, code and checksum.
    private static class Field
    {
        public const int CurHopLimit = 4;
        public const int Flags = 5;
        public const int RouterLifetime = 6;
        public const int RouterLifetimeSize = 2;
        public const int ReachableTime = 8;
        public const int ReachableTimeSize = 4;
        public const int RetransTimer = 12;
        public const int RetransTimerSize = 4;
    }

    // Offsets inside one option: RFC 4861 §4.6.1 (link-layer), §4.6.2 (prefix), §4.6.4 (MTU), RFC 8106 §5.1 (RDNSS).
    private static class OptionField
    {
        public const int Type = 0;
        public const int Length = 1;
        public const int LinkLayerAddress = 2;
        public const int LinkLayerAddressSize = 6;
        public const int PrefixLength = 2;
        public const int PrefixFlags = 3;
        public const int ValidLifetime = 4;
        public const int ValidLifetimeSize = 4;
        public const int PreferredLifetime = 8;
        public const int PreferredLifetimeSize = 4;
        public const int Prefix = 16;
        public const int PrefixSize = 16;
        public const int Mtu = 4;
        public const int MtuSize = 4;
        public const int DnsLifetime = 4;
        public const int DnsLifetimeSize = 4;
        public const int DnsServer = 8;
        public const int DnsServerSize = 16;
    }
}
