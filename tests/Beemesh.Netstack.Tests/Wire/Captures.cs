namespace Beemesh.Netstack.Tests.Wire;

/// <summary>
/// Frames captured with <c>tcpdump -i lo -w</c> on Linux 6.x loopback (Ethernet header with zero MACs). Loopback
/// offloads transport checksums, so the captured TCP/UDP checksum fields held only the pseudo-header partial sum;
/// they are replaced here by the correct values tcpdump -v reported (TCP, UDP over IPv6) or computed independently
/// (UDP over IPv4). IPv4 header and ICMP checksums are as captured.
/// </summary>
internal static class Captures
{
    /// <summary>127.0.0.1:51078 → 127.0.0.1:45678 SYN, seq 2887017394, win 65495, mss 65495, sackOK, TS val 342384619 ecr 0, nop, wscale 10.</summary>
    public static byte[] TcpSyn => Hex.Bytes("""
        0000 0000 0000 0000 0000 0000 0800 4500
        003c d8b1 4000 4006 6408 7f00 0001 7f00
        0001 c786 b26e ac14 63b2 0000 0000 a002
        ffd7 51ef 0000 0204 ffd7 0402 080a 1468
        5feb 0000 0000 0103 030a
        """);

    /// <summary>127.0.0.1:51078 → 127.0.0.1:45678 PSH|ACK seq 1:6 ack 1 win 64, nop nop TS val 342384619 ecr 172976642, "hello".</summary>
    public static byte[] TcpData => Hex.Bytes("""
        0000 0000 0000 0000 0000 0000 0800 4500
        0039 d8b3 4000 4006 6409 7f00 0001 7f00
        0001 c786 b26e ac14 63b3 efab b3a9 8018
        0040 1ee4 0000 0101 080a 1468 5feb 0a4f
        6a02 6865 6c6c 6f
        """);

    /// <summary>127.0.0.1:60527 → 127.0.0.1:45679 UDP "abc".</summary>
    public static byte[] Udp4 => Hex.Bytes("""
        0000 0000 0000 0000 0000 0000 0800 4500
        001f 13ee 4000 4011 28de 7f00 0001 7f00
        0001 ec6f b26f 000b 9e93 6162 63
        """);

    /// <summary>ICMP port unreachable from 127.0.0.1 quoting the (partial-checksum) UDP datagram above; TOS 0xc0.</summary>
    public static byte[] Icmp4PortUnreachable => Hex.Bytes("""
        0000 0000 0000 0000 0000 0000 0800 45c0
        003b 8eea 0000 4001 ed15 7f00 0001 7f00
        0001 0303 9b90 0000 0000 4500 001f 13ee
        4000 4011 28de 7f00 0001 7f00 0001 ec6f
        b26f 000b fe1e 6162 63
        """);

    /// <summary>[::1]:36794 → [::1]:45680 UDP "v6", flow label 0x810ee, hop limit 64.</summary>
    public static byte[] Udp6 => Hex.Bytes("""
        0000 0000 0000 0000 0000 0000 86dd 6008
        10ee 000a 1140 0000 0000 0000 0000 0000
        0000 0000 0001 0000 0000 0000 0000 0000
        0000 0000 0001 8fba b270 000a 4777 7636
        """);

    /// <summary>ICMPv6 port unreachable from ::1 quoting the (partial-checksum) UDP datagram; flow label 0x2dd75.</summary>
    public static byte[] Icmp6PortUnreachable => Hex.Bytes("""
        0000 0000 0000 0000 0000 0000 86dd 6002
        dd75 003a 3a40 0000 0000 0000 0000 0000
        0000 0000 0001 0000 0000 0000 0000 0000
        0000 0000 0001 0104 c3ba 0000 0000 6008
        10ee 000a 1140 0000 0000 0000 0000 0000
        0000 0000 0001 0000 0000 0000 0000 0000
        0000 0000 0001 8fba b270 000a 001d 7636
        """);
}
