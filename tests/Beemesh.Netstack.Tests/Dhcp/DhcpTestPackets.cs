using System.Buffers.Binary;

namespace Beemesh.Netstack.Tests.Dhcp;

/// <summary>DHCP request bytes for tests: captured from busybox udhcpc 1.35.0, and hand-built per RFC 2131.</summary>
internal static class DhcpTestPackets
{
    public const ulong BusyboxMac = 0x5254_0012_3456;

    /// <summary>
    /// DHCPDISCOVER sent by `busybox udhcpc -i vc0 -x hostname:guest1` (MAC 52:54:00:12:34:56,
    /// xid 0x68965f4c), captured with tcpdump on the veth peer: 300 bytes of UDP payload.
    /// </summary>
    public static byte[] BusyboxDiscover() => Assemble(
        "0101060068965f4c0000000000000000000000000000000000000000525400123456",
        "638253633501013902024037070103060c0f1c2a0c066775657374313c0c756468637020312e33352e303d0701525400123456ff");

    /// <summary>The DHCPREQUEST (selecting 10.0.2.21 from server 10.0.2.2) that followed in the same capture, secs = 2.</summary>
    public static byte[] BusyboxRequest() => Assemble(
        "0101060068965f4c0002000000000000000000000000000000000000525400123456",
        "6382536335010332040a00021536040a0002023902024037070103060c0f1c2a0c066775657374313c0c756468637020312e33352e303d0701525400123456ff");

    /// <summary>Header hex (from offset 0 into chaddr), zeros, then cookie and options from offset 236, zero-padded to 300 bytes.</summary>
    private static byte[] Assemble(string headerHex, string cookieAndOptionsHex)
    {
        byte[] header = Convert.FromHexString(headerHex);
        byte[] options = Convert.FromHexString(cookieAndOptionsHex);
        var packet = new byte[Math.Max(300, 236 + options.Length)];
        header.CopyTo(packet, 0);
        options.CopyTo(packet, 236);
        return packet;
    }

    /// <summary>Builds a client request per RFC 2131 §2 with the given options.</summary>
    public static byte[] Build(
        byte type,
        ulong mac,
        uint xid = 0x1234_5678,
        uint requested = 0,
        uint serverId = 0,
        uint ciaddr = 0,
        bool broadcastFlag = false,
        bool cookie = true)
    {
        var packet = new byte[300];
        packet[0] = 1;
        packet[1] = 1;
        packet[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(4), xid);
        if (broadcastFlag)
        {
            packet[10] = 0x80;
        }

        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(12), ciaddr);
        WriteMac(packet.AsSpan(28), mac);
        if (!cookie)
        {
            return packet;
        }

        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(236), 0x63825363);
        int at = 240;
        if (type != 0)
        {
            packet[at++] = 53;
            packet[at++] = 1;
            packet[at++] = type;
        }

        if (requested != 0)
        {
            packet[at++] = 50;
            packet[at++] = 4;
            BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(at), requested);
            at += 4;
        }

        if (serverId != 0)
        {
            packet[at++] = 54;
            packet[at++] = 4;
            BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(at), serverId);
            at += 4;
        }

        packet[at] = 255;
        return packet;
    }

    public static void WriteMac(Span<byte> destination, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)mac);
    }

    /// <summary>10.0.2.x in host byte order.</summary>
    public static uint Guest(byte last) => 0x0A00_0200u | last;
}
