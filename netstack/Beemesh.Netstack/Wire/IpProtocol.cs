namespace Beemesh.Netstack.Wire;

/// <summary>IP protocol / IPv6 next-header numbers (IANA "Assigned Internet Protocol Numbers"). Append-only.</summary>
public enum IpProtocol : byte
{
    /// <summary>IPv6 Hop-by-Hop Options (RFC 8200 §4.3).</summary>
    Ipv6HopByHop = 0,

    /// <summary>ICMP for IPv4 (RFC 792).</summary>
    Icmp = 1,

    /// <summary>TCP (RFC 9293).</summary>
    Tcp = 6,

    /// <summary>UDP (RFC 768).</summary>
    Udp = 17,

    /// <summary>IPv6 Routing header (RFC 8200 §4.4).</summary>
    Ipv6Route = 43,

    /// <summary>IPv6 Fragment header (RFC 8200 §4.5).</summary>
    Ipv6Fragment = 44,

    /// <summary>ICMP for IPv6 (RFC 4443).</summary>
    Icmpv6 = 58,

    /// <summary>No next header (RFC 8200 §4.7).</summary>
    Ipv6NoNext = 59,

    /// <summary>IPv6 Destination Options (RFC 8200 §4.6).</summary>
    Ipv6Opts = 60,
}
