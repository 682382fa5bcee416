using Beemesh.Netstack.Dhcp;
using FsCheck;
using FsCheck.Xunit;

namespace Beemesh.Netstack.Tests.Dhcp;

public class DhcpMessageTests
{
    [Fact]
    public void Parses_busybox_discover()
    {
        byte[] bytes = DhcpTestPackets.BusyboxDiscover();

        Assert.True(DhcpMessage.TryCreate(bytes, out DhcpMessage message));
        Assert.Equal(DhcpMessage.BootRequest, message.Op);
        Assert.Equal(1, message.HardwareType);
        Assert.Equal(6, message.HardwareAddressLength);
        Assert.True(message.IsEthernet);
        Assert.Equal(0x68965f4cu, message.TransactionId);
        Assert.Equal(0, message.Seconds);
        Assert.False(message.BroadcastFlag);
        Assert.Equal(0u, message.ClientAddress);
        Assert.Equal(0u, message.YourAddress);
        Assert.Equal(DhcpTestPackets.BusyboxMac, message.ClientMac);
        Assert.Equal(new byte[] { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, message.ClientHardwareAddress.ToArray());
        Assert.True(message.HasMagicCookie);
        Assert.True(message.OptionsAreWellFormed);
        Assert.Equal(DhcpMessageType.Discover, message.MessageType);
        Assert.False(message.TryGetRequestedIpAddress(out _));
        Assert.False(message.TryGetServerIdentifier(out _));
        Assert.Equal(new byte[] { 1, 3, 6, 12, 15, 28, 42 }, message.ParameterRequestList.ToArray());
        Assert.Equal("guest1"u8.ToArray(), message.HostName.ToArray());
        Assert.Equal(new byte[] { 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, message.ClientIdentifier.ToArray());
        Assert.True(message.TryGetOption(DhcpOptionCode.MaximumMessageSize, out ReadOnlySpan<byte> mms));
        Assert.Equal(new byte[] { 2, 64 }, mms.ToArray());
    }

    [Fact]
    public void Enumerates_options_in_wire_order_and_stops_at_end()
    {
        DhcpMessage.TryCreate(DhcpTestPackets.BusyboxDiscover(), out DhcpMessage message);
        var codes = new List<byte>();
        DhcpOptionEnumerator e = message.Options;
        while (e.MoveNext())
        {
            codes.Add(e.Current.Code);
        }

        Assert.Equal(new byte[] { 53, 57, 55, 12, 60, 61 }, codes);
        Assert.True(e.SawEnd);
        Assert.False(e.IsTruncated);
    }

    [Fact]
    public void Parses_busybox_request()
    {
        Assert.True(DhcpMessage.TryCreate(DhcpTestPackets.BusyboxRequest(), out DhcpMessage message));
        Assert.Equal(DhcpMessageType.Request, message.MessageType);
        Assert.Equal(2, message.Seconds);
        Assert.True(message.TryGetRequestedIpAddress(out uint requested));
        Assert.Equal(DhcpTestPackets.Guest(21), requested);
        Assert.True(message.TryGetServerIdentifier(out uint server));
        Assert.Equal(DhcpTestPackets.Guest(2), server);
    }

    [Fact]
    public void Rejects_buffers_shorter_than_the_fixed_header()
    {
        Assert.False(DhcpMessage.TryCreate(new byte[235], out _));
        Assert.True(DhcpMessage.TryCreate(new byte[236], out DhcpMessage message));
        Assert.False(message.HasMagicCookie);
        Assert.Equal(DhcpMessageType.None, message.MessageType);
        Assert.True(message.OptionsAreWellFormed);
    }

    [Fact]
    public void Without_cookie_no_options_are_read()
    {
        byte[] bytes = DhcpTestPackets.BusyboxDiscover();
        bytes[236] = 0;

        DhcpMessage.TryCreate(bytes, out DhcpMessage message);

        Assert.False(message.HasMagicCookie);
        Assert.Equal(DhcpMessageType.None, message.MessageType);
        Assert.True(message.ParameterRequestList.IsEmpty);
    }

    [Fact]
    public void Skips_pads_and_flags_truncated_option()
    {
        byte[] bytes = new byte[248];
        bytes[236] = 0x63; bytes[237] = 0x82; bytes[238] = 0x53; bytes[239] = 0x63;
        // Pad, Pad, type=Request, then option 50 claiming 4 bytes with only 1 left.
        new byte[] { 0, 0, 53, 1, 3, 50, 4, 10 }.CopyTo(bytes, 240);

        DhcpMessage.TryCreate(bytes, out DhcpMessage message);

        Assert.Equal(DhcpMessageType.Request, message.MessageType);
        Assert.False(message.OptionsAreWellFormed);
        Assert.False(message.TryGetRequestedIpAddress(out _));
    }

    [Fact]
    public void Missing_end_option_is_tolerated_when_options_fill_the_buffer()
    {
        byte[] bytes = new byte[243];
        bytes[236] = 0x63; bytes[237] = 0x82; bytes[238] = 0x53; bytes[239] = 0x63;
        new byte[] { 53, 1, 1 }.CopyTo(bytes, 240);

        DhcpMessage.TryCreate(bytes, out DhcpMessage message);

        Assert.True(message.OptionsAreWellFormed);
        Assert.Equal(DhcpMessageType.Discover, message.MessageType);
    }

    [Fact]
    public void Address_options_must_be_exactly_four_bytes()
    {
        byte[] bytes = new byte[300];
        bytes[236] = 0x63; bytes[237] = 0x82; bytes[238] = 0x53; bytes[239] = 0x63;
        new byte[] { 50, 3, 10, 0, 2, 54, 5, 10, 0, 2, 2, 9, 255 }.CopyTo(bytes, 240);

        DhcpMessage.TryCreate(bytes, out DhcpMessage message);

        Assert.False(message.TryGetRequestedIpAddress(out _));
        Assert.False(message.TryGetServerIdentifier(out _));
    }

    [Property(MaxTest = 500)]
    public void Any_bytes_never_throw(byte[] bytes)
    {
        Touch(bytes ?? []);
    }

    [Property(MaxTest = 500)]
    public void Mutated_captures_never_throw(NonEmptyArray<byte> noise, PositiveInt seed, int cut)
    {
        byte[] bytes = DhcpTestPackets.BusyboxRequest();
        byte[] n = noise.Get;
        for (int i = 0; i < n.Length; i++)
        {
            bytes[(236 + (seed.Get % 64) + i) % bytes.Length] = n[i];
        }

        int length = (int)((uint)cut % (uint)(bytes.Length + 1));
        Touch(bytes.AsSpan(0, length));
    }

    private static void Touch(ReadOnlySpan<byte> bytes)
    {
        if (!DhcpMessage.TryCreate(bytes, out DhcpMessage m))
        {
            Assert.True(bytes.Length < DhcpMessage.FixedHeaderLength);
            return;
        }

        _ = m.Op + m.HardwareType + m.HardwareAddressLength + m.Hops + m.Seconds + m.Flags;
        _ = m.TransactionId + m.ClientAddress + m.YourAddress + m.ServerAddress + m.RelayAddress + m.ClientMac;
        Assert.True(m.ClientHardwareAddress.Length <= 16);
        _ = m.OptionsAreWellFormed;
        _ = m.MessageType;
        m.TryGetRequestedIpAddress(out _);
        m.TryGetServerIdentifier(out _);
        int total = m.ParameterRequestList.Length + m.ClientIdentifier.Length + m.HostName.Length;
        Assert.True(total <= bytes.Length);
        int count = 0;
        DhcpOptionEnumerator e = m.Options;
        while (e.MoveNext())
        {
            Assert.True(e.Current.Data.Length <= 255);
            count++;
        }

        Assert.True(count <= bytes.Length);
    }
}
