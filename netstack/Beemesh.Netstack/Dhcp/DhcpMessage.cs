using System.Buffers.Binary;

namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// A read-only view of a BOOTP/DHCP message (RFC 951, RFC 2131 §2) over the UDP payload.
/// <see cref="TryCreate"/> checks that the fixed 236-byte header is present; after that no
/// accessor can read out of range, and option accessors walk a bounded options field, so no
/// input makes a member throw. Addresses are IPv4 in host byte order.
/// </summary>
/// <remarks>
/// Options are read only from the options field after the magic cookie. The option-overload
/// option (52) is deliberately ignored: sname and file are never parsed as options, which
/// keeps the parser simple and no client Beemesh serves needs it.
/// </remarks>
public readonly ref struct DhcpMessage
{
    /// <summary>Length of the fixed BOOTP header, up to and excluding the magic cookie.</summary>
    public const int FixedHeaderLength = 236;

    /// <summary>Offset of the first option byte (fixed header plus the 4-byte cookie).</summary>
    public const int OptionsOffset = FixedHeaderLength + 4;

    /// <summary>The RFC 2131 §3 magic cookie 99.130.83.99, as a big-endian 32-bit value.</summary>
    public const uint MagicCookie = 0x63825363;

    /// <summary>op value of a message sent by a client (RFC 951).</summary>
    public const byte BootRequest = 1;

    /// <summary>op value of a message sent by a server (RFC 951).</summary>
    public const byte BootReply = 2;

    /// <summary>The broadcast bit of the flags field (RFC 2131 §2, figure 2).</summary>
    public const ushort BroadcastFlagMask = 0x8000;

    private readonly ReadOnlySpan<byte> _buffer;

    private DhcpMessage(ReadOnlySpan<byte> buffer) => _buffer = buffer;

    /// <summary>Wraps <paramref name="buffer"/> if it holds at least the fixed BOOTP header.</summary>
    /// <param name="buffer">The UDP payload.</param>
    /// <param name="message">The view, valid only when the method returns true.</param>
    /// <returns>False when the buffer is shorter than <see cref="FixedHeaderLength"/>.</returns>
    public static bool TryCreate(ReadOnlySpan<byte> buffer, out DhcpMessage message)
    {
        if (buffer.Length < FixedHeaderLength)
        {
            message = default;
            return false;
        }

        message = new DhcpMessage(buffer);
        return true;
    }

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Buffer => _buffer;

    /// <summary>op: 1 = BOOTREQUEST, 2 = BOOTREPLY.</summary>
    public byte Op => _buffer[Field.Op];

    /// <summary>htype: hardware address type (1 = Ethernet).</summary>
    public byte HardwareType => _buffer[Field.HardwareType];

    /// <summary>hlen: hardware address length (6 for Ethernet).</summary>
    public byte HardwareAddressLength => _buffer[Field.HardwareLength];

    /// <summary>hops: relay agent hop count.</summary>
    public byte Hops => _buffer[Field.Hops];

    /// <summary>xid: transaction id chosen by the client.</summary>
    public uint TransactionId => BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.TransactionId]);

    /// <summary>secs: seconds since the client began acquisition.</summary>
    public ushort Seconds => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.Seconds]);

    /// <summary>flags field.</summary>
    public ushort Flags => BinaryPrimitives.ReadUInt16BigEndian(_buffer[Field.Flags]);

    /// <summary>True when the client asked for broadcast replies (it cannot take unicast before it is configured).</summary>
    public bool BroadcastFlag => (Flags & BroadcastFlagMask) != 0;

    /// <summary>ciaddr: the client's current address, when it has one (renewing, rebinding, inform).</summary>
    public uint ClientAddress => BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.ClientAddress]);

    /// <summary>yiaddr: the address the server assigns.</summary>
    public uint YourAddress => BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.YourAddress]);

    /// <summary>siaddr: the next server (boot server) address.</summary>
    public uint ServerAddress => BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.ServerAddress]);

    /// <summary>giaddr: the relay agent address.</summary>
    public uint RelayAddress => BinaryPrimitives.ReadUInt32BigEndian(_buffer[Field.RelayAddress]);

    /// <summary>The whole 16-byte chaddr field.</summary>
    public ReadOnlySpan<byte> ClientHardwareAddressField => _buffer[Field.ClientHardwareAddress];

    /// <summary>chaddr cut to hlen (at most 16 bytes, since hlen is not trusted).</summary>
    public ReadOnlySpan<byte> ClientHardwareAddress =>
        ClientHardwareAddressField[..Math.Min((int)HardwareAddressLength, Field.ClientHardwareAddress.End.Value - Field.ClientHardwareAddress.Start.Value)];

    /// <summary>True when the client claims an Ethernet address (htype 1, hlen 6).</summary>
    public bool IsEthernet => HardwareType == 1 && HardwareAddressLength == 6;

    /// <summary>The first six chaddr bytes as a 48-bit number (big-endian), whatever htype says.</summary>
    public ulong ClientMac
    {
        get
        {
            ReadOnlySpan<byte> mac = ClientHardwareAddressField;
            return ((ulong)BinaryPrimitives.ReadUInt16BigEndian(mac) << 32) | BinaryPrimitives.ReadUInt32BigEndian(mac[2..]);
        }
    }

    /// <summary>True when the 4 bytes after the fixed header are the DHCP magic cookie.</summary>
    public bool HasMagicCookie =>
        _buffer.Length >= OptionsOffset
        && BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(FixedHeaderLength, 4)) == MagicCookie;

    /// <summary>The raw options field (empty when there is no magic cookie: a plain BOOTP vendor area is not read).</summary>
    public ReadOnlySpan<byte> OptionBytes => HasMagicCookie ? _buffer[OptionsOffset..] : ReadOnlySpan<byte>.Empty;

    /// <summary>The options, in wire order; empty without a magic cookie.</summary>
    public DhcpOptionEnumerator Options => new(OptionBytes);

    /// <summary>
    /// True when the options field parses: no option runs past the buffer. A missing End
    /// option is tolerated when the options end exactly at the buffer's end.
    /// </summary>
    public bool OptionsAreWellFormed
    {
        get
        {
            DhcpOptionEnumerator e = Options;
            while (e.MoveNext())
            {
            }

            return !e.IsTruncated;
        }
    }

    /// <summary>Finds the first option with <paramref name="code"/>.</summary>
    /// <param name="code">The option code.</param>
    /// <param name="data">The option's data when found; empty otherwise.</param>
    /// <returns>True when the option is present.</returns>
    public bool TryGetOption(DhcpOptionCode code, out ReadOnlySpan<byte> data)
    {
        DhcpOptionEnumerator e = Options;
        while (e.MoveNext())
        {
            if (e.Current.Code == (byte)code)
            {
                data = e.Current.Data;
                return true;
            }
        }

        data = default;
        return false;
    }

    /// <summary>Option 53; <see cref="DhcpMessageType.None"/> when absent or empty. Unknown values pass through as is.</summary>
    public DhcpMessageType MessageType =>
        TryGetOption(DhcpOptionCode.MessageType, out ReadOnlySpan<byte> data) && data.Length >= 1
            ? (DhcpMessageType)data[0]
            : DhcpMessageType.None;

    /// <summary>Option 50, the address the client asks for.</summary>
    /// <param name="address">The address in host byte order.</param>
    /// <returns>True when the option is present and exactly 4 bytes long.</returns>
    public bool TryGetRequestedIpAddress(out uint address) => TryGetAddressOption(DhcpOptionCode.RequestedIpAddress, out address);

    /// <summary>Option 54, the server the client selected.</summary>
    /// <param name="address">The address in host byte order.</param>
    /// <returns>True when the option is present and exactly 4 bytes long.</returns>
    public bool TryGetServerIdentifier(out uint address) => TryGetAddressOption(DhcpOptionCode.ServerIdentifier, out address);

    /// <summary>Option 55, the codes the client asks for; empty when absent.</summary>
    public ReadOnlySpan<byte> ParameterRequestList => OptionOrEmpty(DhcpOptionCode.ParameterRequestList);

    /// <summary>Option 61, the client identifier (type byte then value); empty when absent.</summary>
    public ReadOnlySpan<byte> ClientIdentifier => OptionOrEmpty(DhcpOptionCode.ClientIdentifier);

    /// <summary>Option 12, the client's host name as raw bytes (not NUL-terminated on the wire); empty when absent.</summary>
    public ReadOnlySpan<byte> HostName => OptionOrEmpty(DhcpOptionCode.HostName);

    private ReadOnlySpan<byte> OptionOrEmpty(DhcpOptionCode code) =>
        TryGetOption(code, out ReadOnlySpan<byte> data) ? data : ReadOnlySpan<byte>.Empty;

    private bool TryGetAddressOption(DhcpOptionCode code, out uint address)
    {
        if (TryGetOption(code, out ReadOnlySpan<byte> data) && data.Length == 4)
        {
            address = BinaryPrimitives.ReadUInt32BigEndian(data);
            return true;
        }

        address = 0;
        return false;
    }

    /// <summary>Field positions of the fixed header (RFC 2131 §2, figure 1).</summary>
    internal static class Field
    {
        public const int Op = 0;
        public const int HardwareType = 1;
        public const int HardwareLength = 2;
        public const int Hops = 3;
        public static readonly Range TransactionId = 4..8;
        public static readonly Range Seconds = 8..10;
        public static readonly Range Flags = 10..12;
        public static readonly Range ClientAddress = 12..16;
        public static readonly Range YourAddress = 16..20;
        public static readonly Range ServerAddress = 20..24;
        public static readonly Range RelayAddress = 24..28;
        public static readonly Range ClientHardwareAddress = 28..44;
        public static readonly Range ServerName = 44..108;
        public static readonly Range BootFile = 108..236;
        public static readonly Range Cookie = 236..240;
    }
}
