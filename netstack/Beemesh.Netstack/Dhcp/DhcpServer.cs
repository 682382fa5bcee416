using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// The built-in DHCP server (RFC 2131), sans-IO: it takes the UDP payload a guest sent to
/// port 67 and writes the BOOTP reply payload to send back from port 67 to port 68. It
/// behaves like libslirp's server so guests see what slirp4netns gives them.
/// </summary>
/// <remarks>
/// <para>Address choice, per client hardware address (chaddr), deterministic:</para>
/// <code>
///  DISCOVER ─► requested address (option 50) in pool and free or already this MAC's? ─► offer it
///           └► else the address this MAC holds, else the lowest free one; none left ─► no reply
///  REQUEST  ─► server id (54) names another server ─► no reply (client chose someone else)
///           ─► option 50, else ciaddr, in pool and free or this MAC's ─► ACK (binds it)
///           │                              otherwise ─► NAK, broadcast (RFC 2131 §4.3.2)
///           └► no address named ─► the MAC's address, else the lowest free one ─► ACK
///  no option 53 (plain BOOTP) ─► as REQUEST with no address named, reply without DHCP options
///  INFORM   ─► ACK with parameters, no yiaddr and no lease time (RFC 2131 §3.4)
///  RELEASE  ─► frees ciaddr when this MAC holds it; no reply
///  DECLINE and anything else ─► no reply
/// </code>
/// <para>
/// An offered address stays reserved for its MAC (RFC 2131 §4.3.1 lets the server reserve it).
/// Leases never expire inside the server, as in libslirp; only RELEASE frees one. Each MAC
/// holds at most one address. Not thread-safe: one packet loop owns an instance.
/// </para>
/// <para>
/// Replies go to the broadcast address (255.255.255.255, ff:ff:ff:ff:ff:ff) unless the client
/// already has an address (ciaddr ≠ 0, renewing or INFORM): then they are unicast to that
/// address (RFC 2131 §4.1), which the reply also carries in its ciaddr field. NAKs are always
/// broadcast. libslirp broadcasts everything; clients accept both.
/// </para>
/// </remarks>
public sealed class DhcpServer
{
    /// <summary>Smallest reply written: a BOOTP message with a 64-byte vendor area (RFC 951), which some clients insist on.</summary>
    public const int MinimumReplyLength = 300;

    /// <summary>Largest reply written: 576-byte IP datagram less IP and UDP headers, which every client must accept (RFC 2131 §2).</summary>
    public const int MaximumReplyLength = 548;

    /// <summary>Text of option 56 in a NAK (libslirp's wording).</summary>
    private static ReadOnlySpan<byte> NakText => "requested address not available"u8;

    private readonly uint _serverId;
    private readonly uint _poolStart;
    private readonly int _poolSize;
    private readonly uint _leaseSeconds;

    // Options common to OFFER, ACK and INFORM replies: mask, router, DNS, domain, MTU. Built once.
    private readonly byte[] _parameterOptions;

    // Lease table: slot i is address _poolStart + i. A slot is in use when _inUse[i].
    private readonly ulong[] _owner;
    private readonly bool[] _inUse;

    /// <summary>Builds a server from <paramref name="options"/>, checking them once.</summary>
    /// <param name="options">The configuration.</param>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public DhcpServer(DhcpServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PrefixLength is < 1 or > 30)
        {
            throw new ArgumentException($"DHCP: prefix length {options.PrefixLength} is outside 1..30.", nameof(options));
        }

        uint mask = uint.MaxValue << (32 - options.PrefixLength);
        uint network = ToHostOrder(options.Network, nameof(options.Network)) & mask;
        uint broadcastAddress = network | ~mask;
        _serverId = ToHostOrder(options.Gateway, nameof(options.Gateway));

        if (options.PoolSize is < 1 or > 256)
        {
            throw new ArgumentException($"DHCP: pool size {options.PoolSize} is outside 1..256.", nameof(options));
        }

        _poolSize = options.PoolSize;
        _poolStart = options.PoolStart is null ? network + 15 : ToHostOrder(options.PoolStart, nameof(options.PoolStart));
        ulong poolLast = (ulong)_poolStart + (ulong)_poolSize - 1;
        if (_poolStart <= network || poolLast >= broadcastAddress)
        {
            throw new ArgumentException(
                $"DHCP: pool {new IPAddress(BinaryPrimitives.ReverseEndianness(_poolStart))} + {_poolSize} does not fit inside the subnet's host addresses.",
                nameof(options));
        }

        if (_serverId - _poolStart < (uint)_poolSize)
        {
            throw new ArgumentException("DHCP: the gateway address lies inside the pool.", nameof(options));
        }

        double seconds = Math.Floor(options.LeaseTime.TotalSeconds);
        if (seconds < 1 || seconds > 0xFFFF_FFFE)
        {
            throw new ArgumentException($"DHCP: lease time {options.LeaseTime} is outside 1 s..0xFFFFFFFE s.", nameof(options));
        }

        _leaseSeconds = (uint)seconds;
        _parameterOptions = BuildParameterOptions(options, mask, _serverId);

        // Longest reply: fixed header + cookie + type(3) + server id(6) + parameters + lease(6) + end(1).
        if (DhcpMessage.OptionsOffset + 3 + 6 + _parameterOptions.Length + 6 + 1 > MaximumReplyLength)
        {
            throw new ArgumentException("DHCP: the configured options do not fit in a 548-byte reply.", nameof(options));
        }

        _owner = new ulong[_poolSize];
        _inUse = new bool[_poolSize];
    }

    /// <summary>Requests that got no reply (malformed, not a request, unknown type, another server chosen, pool exhausted, reply buffer too small). RELEASE is not counted here.</summary>
    public long Dropped { get; private set; }

    /// <summary>DHCPOFFERs written.</summary>
    public long Offers { get; private set; }

    /// <summary>DHCPACKs (and plain BOOTP replies) written.</summary>
    public long Acks { get; private set; }

    /// <summary>DHCPNAKs written.</summary>
    public long Naks { get; private set; }

    /// <summary>DHCPRELEASEs that freed an address.</summary>
    public long Releases { get; private set; }

    /// <summary>Number of pool addresses offered or bound to a client.</summary>
    public int ActiveLeases
    {
        get
        {
            int count = 0;
            foreach (bool used in _inUse)
            {
                count += used ? 1 : 0;
            }

            return count;
        }
    }

    /// <summary>Looks up the address offered or bound to a MAC.</summary>
    /// <param name="mac">The MAC as a 48-bit big-endian number (see <see cref="DhcpMessage.ClientMac"/>).</param>
    /// <param name="address">The address in host byte order.</param>
    /// <returns>True when the MAC holds an address.</returns>
    public bool TryGetLease(ulong mac, out uint address)
    {
        int slot = FindSlotOf(mac);
        address = slot < 0 ? 0 : _poolStart + (uint)slot;
        return slot >= 0;
    }

    /// <summary>Handles one request and writes the reply, if any.</summary>
    /// <param name="request">The UDP payload the client sent to port 67.</param>
    /// <param name="reply">Where the reply payload goes; <see cref="MaximumReplyLength"/> bytes always suffice.</param>
    /// <param name="replyLength">Bytes written to <paramref name="reply"/> (at least <see cref="MinimumReplyLength"/>), or 0.</param>
    /// <param name="broadcast">
    /// True: send to 255.255.255.255:68 and ff:ff:ff:ff:ff:ff. False: unicast to the reply's
    /// ciaddr at its chaddr.
    /// </param>
    /// <returns>True when a reply was written; false when the request is to be ignored.</returns>
    public bool TryHandle(ReadOnlySpan<byte> request, Span<byte> reply, out int replyLength, out bool broadcast)
    {
        replyLength = 0;
        broadcast = false;
        if (!DhcpMessage.TryCreate(request, out DhcpMessage message)
            || message.Op != DhcpMessage.BootRequest
            || !message.IsEthernet
            || !message.OptionsAreWellFormed)
        {
            return Drop();
        }

        ulong mac = message.ClientMac;
        DhcpMessageType type = message.MessageType;
        switch (type)
        {
            case DhcpMessageType.Discover:
                return HandleDiscover(message, mac, reply, out replyLength, out broadcast);
            case DhcpMessageType.Request:
                return HandleRequest(message, mac, reply, out replyLength, out broadcast);
            case DhcpMessageType.None:
                return HandleBootp(message, mac, reply, out replyLength, out broadcast);
            case DhcpMessageType.Inform:
                return HandleInform(message, reply, out replyLength, out broadcast);
            case DhcpMessageType.Release:
                HandleRelease(message, mac);
                return false;
            default:
                // DECLINE: libslirp ignores it too; freeing the slot would only hand the same
                // address out again. OFFER/ACK/NAK from a client and unknown types: ignore.
                return Drop();
        }
    }

    private bool HandleDiscover(DhcpMessage message, ulong mac, Span<byte> reply, out int length, out bool broadcast)
    {
        length = 0;
        broadcast = true;
        int slot = -1;
        if (message.TryGetRequestedIpAddress(out uint requested))
        {
            slot = SlotIfAvailable(requested, mac);
        }

        if (slot < 0)
        {
            slot = FindSlotOf(mac);
        }

        if (slot < 0)
        {
            slot = FindFreeSlot();
        }

        if (slot < 0)
        {
            return Drop();
        }

        if (!TryWriteReply(message, reply, DhcpMessageType.Offer, _poolStart + (uint)slot, clientAddress: 0, withLease: true, out length))
        {
            return Drop();
        }

        Bind(slot, mac);
        Offers++;
        return true;
    }

    private bool HandleRequest(DhcpMessage message, ulong mac, Span<byte> reply, out int length, out bool broadcast)
    {
        length = 0;
        broadcast = true;

        // RFC 2131 §4.3.2: a REQUEST naming another server means the client took that offer.
        if (message.TryGetServerIdentifier(out uint serverId) && serverId != _serverId)
        {
            return Drop();
        }

        if (!message.TryGetRequestedIpAddress(out uint requested))
        {
            requested = message.ClientAddress;
        }

        int slot;
        if (requested != 0)
        {
            slot = SlotIfAvailable(requested, mac);
            if (slot < 0)
            {
                if (!TryWriteNak(message, reply, out length))
                {
                    return Drop();
                }

                Naks++;
                return true;
            }
        }
        else
        {
            // No address named: libslirp answers as if the client had been given one before
            // (some clients remember their address and skip DISCOVER).
            slot = FindSlotOf(mac);
            if (slot < 0)
            {
                slot = FindFreeSlot();
            }

            if (slot < 0)
            {
                return Drop();
            }
        }

        uint ciaddr = message.ClientAddress;
        if (!TryWriteReply(message, reply, DhcpMessageType.Ack, _poolStart + (uint)slot, ciaddr, withLease: true, out length))
        {
            return Drop();
        }

        Bind(slot, mac);
        broadcast = ciaddr == 0;
        Acks++;
        return true;
    }

    private bool HandleBootp(DhcpMessage message, ulong mac, Span<byte> reply, out int length, out bool broadcast)
    {
        length = 0;
        broadcast = true;
        int slot = FindSlotOf(mac);
        if (slot < 0)
        {
            slot = FindFreeSlot();
        }

        if (slot < 0 || !TryWriteReply(message, reply, DhcpMessageType.None, _poolStart + (uint)slot, clientAddress: 0, withLease: false, out length))
        {
            return Drop();
        }

        Bind(slot, mac);
        Acks++;
        return true;
    }

    private bool HandleInform(DhcpMessage message, Span<byte> reply, out int length, out bool broadcast)
    {
        length = 0;
        uint ciaddr = message.ClientAddress;
        broadcast = ciaddr == 0;

        // RFC 2131 §3.4: parameters only; no yiaddr and no lease time.
        if (!TryWriteReply(message, reply, DhcpMessageType.Ack, yourAddress: 0, ciaddr, withLease: false, out length))
        {
            return Drop();
        }

        Acks++;
        return true;
    }

    private void HandleRelease(DhcpMessage message, ulong mac)
    {
        uint offset = message.ClientAddress - _poolStart;
        if (offset < (uint)_poolSize && _inUse[offset] && _owner[offset] == mac)
        {
            _inUse[offset] = false;
            _owner[offset] = 0;
            Releases++;
        }
    }

    private bool Drop()
    {
        Dropped++;
        return false;
    }

    private int SlotIfAvailable(uint address, ulong mac)
    {
        uint offset = address - _poolStart;
        if (offset >= (uint)_poolSize)
        {
            return -1;
        }

        int slot = (int)offset;
        return !_inUse[slot] || _owner[slot] == mac ? slot : -1;
    }

    private int FindSlotOf(ulong mac)
    {
        for (int i = 0; i < _poolSize; i++)
        {
            if (_inUse[i] && _owner[i] == mac)
            {
                return i;
            }
        }

        return -1;
    }

    private int FindFreeSlot()
    {
        for (int i = 0; i < _poolSize; i++)
        {
            if (!_inUse[i])
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Gives <paramref name="slot"/> to <paramref name="mac"/>, freeing any other slot the MAC held (one address per client).</summary>
    private void Bind(int slot, ulong mac)
    {
        int previous = FindSlotOf(mac);
        if (previous >= 0 && previous != slot)
        {
            _inUse[previous] = false;
            _owner[previous] = 0;
        }

        _inUse[slot] = true;
        _owner[slot] = mac;
    }

    private int ReplyLength(int optionsLength) => Math.Max(MinimumReplyLength, DhcpMessage.OptionsOffset + optionsLength);

    private bool TryWriteReply(DhcpMessage request, Span<byte> reply, DhcpMessageType type, uint yourAddress, uint clientAddress, bool withLease, out int length)
    {
        int optionsLength = (type == DhcpMessageType.None ? 0 : 3 + 6) + _parameterOptions.Length + (withLease ? 6 : 0) + 1;
        length = ReplyLength(optionsLength);
        if (reply.Length < length)
        {
            length = 0;
            return false;
        }

        Span<byte> message = reply[..length];
        WriteHeader(request, message, yourAddress, clientAddress);
        Span<byte> options = message[DhcpMessage.OptionsOffset..];
        int at = 0;
        if (type != DhcpMessageType.None)
        {
            at = WriteMessageTypeAndServerId(options, type);
        }

        _parameterOptions.CopyTo(options[at..]);
        at += _parameterOptions.Length;
        if (withLease)
        {
            options[at++] = (byte)DhcpOptionCode.LeaseTime;
            options[at++] = 4;
            BinaryPrimitives.WriteUInt32BigEndian(options[at..], _leaseSeconds);
            at += 4;
        }

        options[at] = (byte)DhcpOptionCode.End;
        return true;
    }

    private bool TryWriteNak(DhcpMessage request, Span<byte> reply, out int length)
    {
        int optionsLength = 3 + 6 + 2 + NakText.Length + 1;
        length = ReplyLength(optionsLength);
        if (reply.Length < length)
        {
            length = 0;
            return false;
        }

        Span<byte> message = reply[..length];

        // RFC 2131 table 3: a NAK carries no addresses besides giaddr and chaddr.
        WriteHeader(request, message, yourAddress: 0, clientAddress: 0);
        Span<byte> options = message[DhcpMessage.OptionsOffset..];
        int at = WriteMessageTypeAndServerId(options, DhcpMessageType.Nak);
        options[at++] = (byte)DhcpOptionCode.Message;
        options[at++] = (byte)NakText.Length;
        NakText.CopyTo(options[at..]);
        at += NakText.Length;
        options[at] = (byte)DhcpOptionCode.End;
        return true;
    }

    private void WriteHeader(DhcpMessage request, Span<byte> message, uint yourAddress, uint clientAddress)
    {
        message.Clear();
        message[DhcpMessage.Field.Op] = DhcpMessage.BootReply;
        message[DhcpMessage.Field.HardwareType] = 1;
        message[DhcpMessage.Field.HardwareLength] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(message[DhcpMessage.Field.TransactionId], request.TransactionId);
        BinaryPrimitives.WriteUInt16BigEndian(message[DhcpMessage.Field.Flags], request.Flags);
        BinaryPrimitives.WriteUInt32BigEndian(message[DhcpMessage.Field.ClientAddress], clientAddress);
        BinaryPrimitives.WriteUInt32BigEndian(message[DhcpMessage.Field.YourAddress], yourAddress);
        BinaryPrimitives.WriteUInt32BigEndian(message[DhcpMessage.Field.ServerAddress], _serverId);
        BinaryPrimitives.WriteUInt32BigEndian(message[DhcpMessage.Field.RelayAddress], request.RelayAddress);
        request.ClientHardwareAddressField.CopyTo(message[DhcpMessage.Field.ClientHardwareAddress]);
        BinaryPrimitives.WriteUInt32BigEndian(message[DhcpMessage.Field.Cookie], DhcpMessage.MagicCookie);
    }

    private int WriteMessageTypeAndServerId(Span<byte> options, DhcpMessageType type)
    {
        options[0] = (byte)DhcpOptionCode.MessageType;
        options[1] = 1;
        options[2] = (byte)type;
        options[3] = (byte)DhcpOptionCode.ServerIdentifier;
        options[4] = 4;
        BinaryPrimitives.WriteUInt32BigEndian(options[5..], _serverId);
        return 9;
    }

    private static byte[] BuildParameterOptions(DhcpServerOptions options, uint mask, uint router)
    {
        var bytes = new List<byte>(64);
        AddAddressOption(bytes, DhcpOptionCode.SubnetMask, [mask]);
        AddAddressOption(bytes, DhcpOptionCode.Router, [router]);

        IReadOnlyList<IPAddress> dns = options.Dns ?? [];
        if (dns.Count > 63)
        {
            throw new ArgumentException($"DHCP: {dns.Count} DNS servers do not fit in one option (at most 63).", nameof(options));
        }

        if (dns.Count > 0)
        {
            var servers = new uint[dns.Count];
            for (int i = 0; i < servers.Length; i++)
            {
                servers[i] = ToHostOrder(dns[i], nameof(options.Dns));
            }

            AddAddressOption(bytes, DhcpOptionCode.DomainNameServer, servers);
        }

        if (options.DomainName is { } domain)
        {
            if (domain.Length is < 1 or > 255 || !Ascii.IsValid(domain))
            {
                throw new ArgumentException("DHCP: the domain name must be 1..255 ASCII characters.", nameof(options));
            }

            bytes.Add((byte)DhcpOptionCode.DomainName);
            bytes.Add((byte)domain.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(domain));
        }

        if (options.Mtu is { } mtu)
        {
            if (mtu is < 68 or > 65535)
            {
                throw new ArgumentException($"DHCP: MTU {mtu} is outside 68..65535 (RFC 2132 §5.1).", nameof(options));
            }

            bytes.Add((byte)DhcpOptionCode.InterfaceMtu);
            bytes.Add(2);
            bytes.Add((byte)(mtu >> 8));
            bytes.Add((byte)mtu);
        }

        return [.. bytes];
    }

    private static void AddAddressOption(List<byte> bytes, DhcpOptionCode code, uint[] addresses)
    {
        bytes.Add((byte)code);
        bytes.Add((byte)(addresses.Length * 4));
        foreach (uint address in addresses)
        {
            bytes.Add((byte)(address >> 24));
            bytes.Add((byte)(address >> 16));
            bytes.Add((byte)(address >> 8));
            bytes.Add((byte)address);
        }
    }

    private static uint ToHostOrder(IPAddress? address, string name)
    {
        if (address is null || address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"DHCP: {name} must be an IPv4 address.", name);
        }

        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }
}
