namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// DHCP message types carried in option 53 (RFC 2132 §9.6). Values are fixed by the wire;
/// this enum is append-only.
/// </summary>
public enum DhcpMessageType : byte
{
    /// <summary>No option 53: a plain BOOTP message (RFC 951), or the option is absent/empty.</summary>
    None = 0,

    /// <summary>DHCPDISCOVER: a client looks for servers.</summary>
    Discover = 1,

    /// <summary>DHCPOFFER: a server offers an address.</summary>
    Offer = 2,

    /// <summary>DHCPREQUEST: a client selects, confirms or renews an address.</summary>
    Request = 3,

    /// <summary>DHCPDECLINE: the client found the offered address already in use.</summary>
    Decline = 4,

    /// <summary>DHCPACK: the server commits the lease.</summary>
    Ack = 5,

    /// <summary>DHCPNAK: the server refuses the client's notion of its address.</summary>
    Nak = 6,

    /// <summary>DHCPRELEASE: the client gives its address back.</summary>
    Release = 7,

    /// <summary>DHCPINFORM: a configured client asks only for parameters (RFC 2131 §3.4).</summary>
    Inform = 8,
}
