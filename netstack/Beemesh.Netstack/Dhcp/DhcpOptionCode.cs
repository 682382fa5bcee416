namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// The DHCP/BOOTP option codes Beemesh reads or writes (RFC 2132). Codes are fixed by the wire;
/// this enum is append-only.
/// </summary>
public enum DhcpOptionCode : byte
{
    /// <summary>Pad (RFC 2132 §3.1): a single zero byte with no length field.</summary>
    Pad = 0,

    /// <summary>Subnet mask (RFC 2132 §3.3).</summary>
    SubnetMask = 1,

    /// <summary>Router list (RFC 2132 §3.5).</summary>
    Router = 3,

    /// <summary>Domain name server list (RFC 2132 §3.8).</summary>
    DomainNameServer = 6,

    /// <summary>Host name (RFC 2132 §3.14).</summary>
    HostName = 12,

    /// <summary>Domain name (RFC 2132 §3.17).</summary>
    DomainName = 15,

    /// <summary>Interface MTU (RFC 2132 §5.1).</summary>
    InterfaceMtu = 26,

    /// <summary>Requested IP address (RFC 2132 §9.1).</summary>
    RequestedIpAddress = 50,

    /// <summary>IP address lease time in seconds (RFC 2132 §9.2).</summary>
    LeaseTime = 51,

    /// <summary>Option overload (RFC 2132 §9.3); Beemesh ignores it and never reads sname/file as options.</summary>
    OptionOverload = 52,

    /// <summary>DHCP message type (RFC 2132 §9.6).</summary>
    MessageType = 53,

    /// <summary>Server identifier (RFC 2132 §9.7).</summary>
    ServerIdentifier = 54,

    /// <summary>Parameter request list (RFC 2132 §9.8).</summary>
    ParameterRequestList = 55,

    /// <summary>Error message text, used in DHCPNAK (RFC 2132 §9.9).</summary>
    Message = 56,

    /// <summary>Maximum DHCP message size the client accepts (RFC 2132 §9.10).</summary>
    MaximumMessageSize = 57,

    /// <summary>Renewal (T1) time (RFC 2132 §9.11).</summary>
    RenewalTime = 58,

    /// <summary>Rebinding (T2) time (RFC 2132 §9.12).</summary>
    RebindingTime = 59,

    /// <summary>Vendor class identifier (RFC 2132 §9.13).</summary>
    VendorClassIdentifier = 60,

    /// <summary>Client identifier (RFC 2132 §9.14).</summary>
    ClientIdentifier = 61,

    /// <summary>Domain search list (RFC 3397).</summary>
    DomainSearch = 119,

    /// <summary>End (RFC 2132 §3.2): marks the end of the options.</summary>
    End = 255,
}
