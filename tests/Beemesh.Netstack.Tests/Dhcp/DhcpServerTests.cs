using System.Net;
using Beemesh.Netstack.Dhcp;
using FsCheck;
using FsCheck.Xunit;
using static Beemesh.Netstack.Tests.Dhcp.DhcpTestPackets;

namespace Beemesh.Netstack.Tests.Dhcp;

public class DhcpServerTests
{
    private const byte Discover = 1;
    private const byte Request = 3;
    private const byte Decline = 4;
    private const byte Release = 7;
    private const byte Inform = 8;

    private static readonly uint ServerId = Guest(2);

    private readonly DhcpServer _server = new(new DhcpServerOptions());

    private (byte[] Reply, bool Broadcast) Handle(byte[] request)
    {
        var buffer = new byte[DhcpServer.MaximumReplyLength];
        Assert.True(_server.TryHandle(request, buffer, out int length, out bool broadcast));
        Assert.InRange(length, DhcpServer.MinimumReplyLength, DhcpServer.MaximumReplyLength);
        return (buffer[..length], broadcast);
    }

    private bool Ignored(byte[] request) =>
        !_server.TryHandle(request, new byte[DhcpServer.MaximumReplyLength], out int length, out _) && length == 0;

    [Fact]
    public void Offer_to_busybox_discover_matches_libslirp_golden_bytes()
    {
        (byte[] reply, bool broadcast) = Handle(BusyboxDiscover());

        Assert.True(broadcast);
        Assert.Equal(300, reply.Length);
        Assert.Equal("0201060068965f4c00000000000000000a00020f0a00020200000000525400123456", Convert.ToHexStringLower(reply.AsSpan(0, 34)));
        Assert.All(reply[34..236], b => Assert.Equal(0, b));
        // cookie, type OFFER, server id, mask, router, DNS, lease 86400 s, end.
        const string options = "63825363" + "350102" + "36040a000202" + "0104ffffff00" + "03040a000202" + "06040a000203" + "330400015180" + "ff";
        Assert.Equal(options, Convert.ToHexStringLower(reply.AsSpan(236, options.Length / 2)));
        Assert.All(reply[(236 + (options.Length / 2))..], b => Assert.Equal(0, b));
        Assert.Equal(1, _server.Offers);
    }

    [Fact]
    public void Discover_request_ack_flow_binds_the_offered_address()
    {
        (byte[] offer, _) = Handle(BusyboxDiscover());
        DhcpMessage.TryCreate(offer, out DhcpMessage o);
        Assert.Equal(DhcpMessageType.Offer, o.MessageType);
        Assert.Equal(Guest(15), o.YourAddress);

        byte[] request = Build(Request, BusyboxMac, xid: 0x68965f4c, requested: Guest(15), serverId: ServerId);
        (byte[] ack, bool broadcast) = Handle(request);
        DhcpMessage.TryCreate(ack, out DhcpMessage a);

        Assert.True(broadcast);
        Assert.Equal(DhcpMessageType.Ack, a.MessageType);
        Assert.Equal(DhcpMessage.BootReply, a.Op);
        Assert.Equal(0x68965f4cu, a.TransactionId);
        Assert.Equal(Guest(15), a.YourAddress);
        Assert.Equal(ServerId, a.ServerAddress);
        Assert.True(a.TryGetServerIdentifier(out uint sid));
        Assert.Equal(ServerId, sid);
        Assert.True(a.TryGetOption(DhcpOptionCode.LeaseTime, out ReadOnlySpan<byte> lease));
        Assert.Equal(new byte[] { 0, 1, 0x51, 0x80 }, lease.ToArray());
        Assert.True(_server.TryGetLease(BusyboxMac, out uint bound));
        Assert.Equal(Guest(15), bound);
        Assert.Equal(1, _server.Acks);
    }

    [Fact]
    public void Busybox_request_for_address_21_is_granted_when_free()
    {
        (byte[] ack, _) = Handle(BusyboxRequest());
        DhcpMessage.TryCreate(ack, out DhcpMessage a);

        Assert.Equal(DhcpMessageType.Ack, a.MessageType);
        Assert.Equal(Guest(21), a.YourAddress);
    }

    [Fact]
    public void Same_mac_gets_the_same_address_again_and_different_macs_get_the_next_ones()
    {
        uint first = Offered(0x02_00_00_00_00_01);
        uint second = Offered(0x02_00_00_00_00_02);
        uint again = Offered(0x02_00_00_00_00_01);

        Assert.Equal(Guest(15), first);
        Assert.Equal(Guest(16), second);
        Assert.Equal(first, again);
        Assert.Equal(2, _server.ActiveLeases);
    }

    [Fact]
    public void Discover_honours_a_free_requested_address_and_ignores_one_outside_the_pool()
    {
        Assert.Equal(Guest(20), Offered(0x02_00_00_00_00_01, requested: Guest(20)));
        Assert.Equal(Guest(15), Offered(0x02_00_00_00_00_02, requested: Guest(100)));
        // .20 is taken by the first MAC: the third gets the lowest free one.
        Assert.Equal(Guest(16), Offered(0x02_00_00_00_00_03, requested: Guest(20)));
    }

    [Fact]
    public void Pool_exhaustion_gives_no_offer_to_the_seventeenth_client()
    {
        for (ulong i = 1; i <= 16; i++)
        {
            Assert.Equal(Guest((byte)(14 + i)), Offered(0x02_00_00_00_00_00 + i));
        }

        Assert.True(Ignored(Build(Discover, 0x02_00_00_00_00_99)));
        Assert.Equal(1, _server.Dropped);
        Assert.Equal(16, _server.ActiveLeases);
        // A known client is still served.
        Assert.Equal(Guest(20), Offered(0x02_00_00_00_00_06));
    }

    [Fact]
    public void Release_frees_the_address_for_another_client()
    {
        for (ulong i = 1; i <= 16; i++)
        {
            Offered(0x02_00_00_00_00_00 + i);
        }

        Assert.True(Ignored(Build(Release, 0x02_00_00_00_00_03, ciaddr: Guest(17))));
        Assert.Equal(1, _server.Releases);
        Assert.Equal(0, _server.Dropped);
        Assert.False(_server.TryGetLease(0x02_00_00_00_00_03, out _));
        Assert.Equal(Guest(17), Offered(0x02_00_00_00_00_99));
    }

    [Fact]
    public void Release_from_another_mac_frees_nothing()
    {
        Offered(0x02_00_00_00_00_01);

        Ignored(Build(Release, 0x02_00_00_00_00_02, ciaddr: Guest(15)));

        Assert.Equal(0, _server.Releases);
        Assert.True(_server.TryGetLease(0x02_00_00_00_00_01, out _));
    }

    [Fact]
    public void Request_for_an_address_held_by_another_mac_is_naked_by_broadcast()
    {
        Offered(0x02_00_00_00_00_01);

        (byte[] nak, bool broadcast) = Handle(Build(Request, 0x02_00_00_00_00_02, requested: Guest(15), serverId: ServerId));
        DhcpMessage.TryCreate(nak, out DhcpMessage n);

        Assert.True(broadcast);
        Assert.Equal(DhcpMessageType.Nak, n.MessageType);
        Assert.Equal(0u, n.YourAddress);
        Assert.True(n.TryGetServerIdentifier(out uint sid));
        Assert.Equal(ServerId, sid);
        Assert.True(n.TryGetOption(DhcpOptionCode.Message, out ReadOnlySpan<byte> text));
        Assert.Equal("requested address not available"u8.ToArray(), text.ToArray());
        Assert.False(n.TryGetOption(DhcpOptionCode.LeaseTime, out _));
        Assert.Equal(1, _server.Naks);
        Assert.False(_server.TryGetLease(0x02_00_00_00_00_02, out _));
    }

    [Fact]
    public void Request_for_an_address_outside_the_pool_is_naked()
    {
        (byte[] nak, _) = Handle(Build(Request, 0x02_00_00_00_00_01, requested: 0xC0A8_0105));
        DhcpMessage.TryCreate(nak, out DhcpMessage n);

        Assert.Equal(DhcpMessageType.Nak, n.MessageType);
    }

    [Fact]
    public void Request_naming_another_server_is_ignored()
    {
        Assert.True(Ignored(Build(Request, 0x02_00_00_00_00_01, requested: Guest(15), serverId: Guest(1))));
        Assert.Equal(1, _server.Dropped);
        Assert.Equal(0, _server.ActiveLeases);
    }

    [Fact]
    public void Renewal_with_ciaddr_is_acked_by_unicast_to_ciaddr()
    {
        ulong mac = 0x02_00_00_00_00_01;
        Offered(mac);

        (byte[] ack, bool broadcast) = Handle(Build(Request, mac, ciaddr: Guest(15)));
        DhcpMessage.TryCreate(ack, out DhcpMessage a);

        Assert.False(broadcast);
        Assert.Equal(DhcpMessageType.Ack, a.MessageType);
        Assert.Equal(Guest(15), a.ClientAddress);
        Assert.Equal(Guest(15), a.YourAddress);
    }

    [Fact]
    public void Request_without_any_address_gets_the_macs_address_or_a_new_one()
    {
        (byte[] ack, _) = Handle(Build(Request, 0x02_00_00_00_00_07));
        DhcpMessage.TryCreate(ack, out DhcpMessage a);

        Assert.Equal(DhcpMessageType.Ack, a.MessageType);
        Assert.Equal(Guest(15), a.YourAddress);
    }

    [Fact]
    public void Requesting_a_second_address_moves_the_lease()
    {
        ulong mac = 0x02_00_00_00_00_01;
        Offered(mac);

        Handle(Build(Request, mac, requested: Guest(25)));

        Assert.True(_server.TryGetLease(mac, out uint address));
        Assert.Equal(Guest(25), address);
        Assert.Equal(1, _server.ActiveLeases);
    }

    [Fact]
    public void Plain_bootp_request_gets_a_reply_without_dhcp_options()
    {
        (byte[] reply, bool broadcast) = Handle(Build(0, 0x02_00_00_00_00_01, cookie: false));
        DhcpMessage.TryCreate(reply, out DhcpMessage r);

        Assert.True(broadcast);
        Assert.Equal(Guest(15), r.YourAddress);
        Assert.Equal(DhcpMessageType.None, r.MessageType);
        Assert.True(r.TryGetOption(DhcpOptionCode.SubnetMask, out _));
        Assert.False(r.TryGetOption(DhcpOptionCode.LeaseTime, out _));
    }

    [Fact]
    public void Inform_gets_parameters_without_address_or_lease()
    {
        (byte[] reply, bool broadcast) = Handle(Build(Inform, 0x02_00_00_00_00_01, ciaddr: Guest(200)));
        DhcpMessage.TryCreate(reply, out DhcpMessage r);

        Assert.False(broadcast);
        Assert.Equal(DhcpMessageType.Ack, r.MessageType);
        Assert.Equal(0u, r.YourAddress);
        Assert.Equal(Guest(200), r.ClientAddress);
        Assert.True(r.TryGetOption(DhcpOptionCode.DomainNameServer, out _));
        Assert.False(r.TryGetOption(DhcpOptionCode.LeaseTime, out _));
        Assert.Equal(0, _server.ActiveLeases);
    }

    [Theory]
    [InlineData(Decline)]
    [InlineData(2)] // OFFER from a client
    [InlineData(42)]
    public void Other_message_types_are_ignored_and_counted(byte type)
    {
        Assert.True(Ignored(Build(type, 0x02_00_00_00_00_01)));
        Assert.Equal(1, _server.Dropped);
    }

    [Fact]
    public void Replies_from_servers_and_non_ethernet_requests_are_ignored()
    {
        byte[] reply = Build(Discover, 0x02_00_00_00_00_01);
        reply[0] = 2;
        byte[] token = Build(Discover, 0x02_00_00_00_00_01);
        token[1] = 6;

        Assert.True(Ignored(reply));
        Assert.True(Ignored(token));
        Assert.True(Ignored(new byte[100]));
        Assert.Equal(3, _server.Dropped);
    }

    [Fact]
    public void Too_small_reply_buffer_is_a_drop_and_binds_nothing()
    {
        Assert.False(_server.TryHandle(BusyboxDiscover(), new byte[299], out int length, out _));
        Assert.Equal(0, length);
        Assert.Equal(0, _server.ActiveLeases);
    }

    [Fact]
    public void Handling_requests_allocates_nothing()
    {
        byte[] discover = BusyboxDiscover();
        byte[] request = BusyboxRequest();
        byte[] nak = Build(Request, 0x02_00_00_00_00_09, requested: 0xC0A8_0105);
        var reply = new byte[DhcpServer.MaximumReplyLength];
        _server.TryHandle(discover, reply, out _, out _);
        _server.TryHandle(request, reply, out _, out _);
        _server.TryHandle(nak, reply, out _, out _);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            _server.TryHandle(discover, reply, out _, out _);
            _server.TryHandle(request, reply, out _, out _);
            _server.TryHandle(nak, reply, out _, out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(101, _server.Naks);
    }

    [Fact]
    public void Configured_domain_mtu_and_dns_list_are_offered()
    {
        var server = new DhcpServer(new DhcpServerOptions
        {
            Network = IPAddress.Parse("192.168.7.0"),
            PrefixLength = 25,
            Gateway = IPAddress.Parse("192.168.7.1"),
            Dns = [IPAddress.Parse("192.168.7.3"), IPAddress.Parse("192.168.7.4")],
            PoolStart = IPAddress.Parse("192.168.7.100"),
            PoolSize = 4,
            LeaseTime = TimeSpan.FromMinutes(10),
            DomainName = "beemesh.test",
            Mtu = 65520,
        });
        var buffer = new byte[DhcpServer.MaximumReplyLength];

        Assert.True(server.TryHandle(Build(Discover, 0x02_00_00_00_00_01), buffer, out int length, out _));
        DhcpMessage.TryCreate(buffer.AsSpan(0, length), out DhcpMessage r);

        Assert.Equal(0xC0A8_0764u, r.YourAddress);
        Assert.True(r.TryGetServerIdentifier(out uint sid));
        Assert.Equal(0xC0A8_0701u, sid);
        Assert.True(r.TryGetOption(DhcpOptionCode.SubnetMask, out ReadOnlySpan<byte> mask));
        Assert.Equal(new byte[] { 255, 255, 255, 128 }, mask.ToArray());
        Assert.True(r.TryGetOption(DhcpOptionCode.DomainNameServer, out ReadOnlySpan<byte> dns));
        Assert.Equal(new byte[] { 192, 168, 7, 3, 192, 168, 7, 4 }, dns.ToArray());
        Assert.True(r.TryGetOption(DhcpOptionCode.DomainName, out ReadOnlySpan<byte> domain));
        Assert.Equal("beemesh.test"u8.ToArray(), domain.ToArray());
        Assert.True(r.TryGetOption(DhcpOptionCode.InterfaceMtu, out ReadOnlySpan<byte> mtu));
        Assert.Equal(new byte[] { 0xFF, 0xF0 }, mtu.ToArray());
        Assert.True(r.TryGetOption(DhcpOptionCode.LeaseTime, out ReadOnlySpan<byte> lease));
        Assert.Equal(new byte[] { 0, 0, 2, 88 }, lease.ToArray());
    }

    [Theory]
    [InlineData(0, 16)]
    [InlineData(24, 0)]
    [InlineData(24, 300)]
    [InlineData(28, 16)]
    public void Bad_configuration_is_refused_at_construction(int prefix, int poolSize)
    {
        var options = new DhcpServerOptions { PrefixLength = prefix == 0 ? 31 : prefix, PoolSize = poolSize };
        Assert.Throws<ArgumentException>(() => new DhcpServer(options));
    }

    [Fact]
    public void Ipv6_gateway_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new DhcpServer(new DhcpServerOptions { Gateway = IPAddress.IPv6Loopback }));
    }

    [Property(MaxTest = 300)]
    public void Any_bytes_never_throw_and_replies_stay_in_bounds(byte[] bytes, bool valid, byte type, byte noiseAt, byte noise)
    {
        var server = new DhcpServer(new DhcpServerOptions());
        byte[] request = bytes ?? [];
        if (valid)
        {
            request = Build((byte)(type % 10), 0x02_00_00_00_00_01, requested: Guest(type), ciaddr: type > 128 ? Guest(15) : 0);
            request[236 + (noiseAt % 64)] ^= noise;
        }

        var reply = new byte[DhcpServer.MaximumReplyLength];
        bool handled = server.TryHandle(request, reply, out int length, out _);

        Assert.Equal(handled, length > 0);
        if (handled)
        {
            Assert.InRange(length, DhcpServer.MinimumReplyLength, DhcpServer.MaximumReplyLength);
            Assert.True(DhcpMessage.TryCreate(reply.AsSpan(0, length), out DhcpMessage r));
            Assert.Equal(DhcpMessage.BootReply, r.Op);
            Assert.True(r.OptionsAreWellFormed);
        }
        else
        {
            Assert.Equal(0, server.Offers + server.Acks + server.Naks);
        }
    }

    private uint Offered(ulong mac, uint requested = 0)
    {
        (byte[] reply, _) = Handle(Build(Discover, mac, requested: requested));
        DhcpMessage.TryCreate(reply, out DhcpMessage offer);
        Assert.Equal(DhcpMessageType.Offer, offer.MessageType);
        return offer.YourAddress;
    }
}
