using System.Net;

namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// Configuration of the built-in DHCP server. Defaults reproduce what slirp4netns/libslirp
/// offers on its default network: 10.0.2.0/24, server and router 10.0.2.2, DNS 10.0.2.3,
/// sixteen addresses from 10.0.2.15, 24-hour leases. Read once when the server is built;
/// changing an instance later has no effect on a server already built from it.
/// </summary>
public sealed class DhcpServerOptions
{
    /// <summary>Network address of the guest subnet. Default 10.0.2.0. Host bits are ignored.</summary>
    public IPAddress Network { get; set; } = IPAddress.Parse("10.0.2.0");

    /// <summary>Prefix length of the guest subnet, 1..30. Default 24 (netmask 255.255.255.0).</summary>
    public int PrefixLength { get; set; } = 24;

    /// <summary>
    /// The stack's own address on the subnet: sent as server identifier (option 54), router
    /// (option 3) and siaddr, as libslirp does. Default 10.0.2.2.
    /// </summary>
    public IPAddress Gateway { get; set; } = IPAddress.Parse("10.0.2.2");

    /// <summary>Name servers sent in option 6, IPv4 only, 0..63 entries (empty omits the option). Default [10.0.2.3].</summary>
    public IReadOnlyList<IPAddress> Dns { get; set; } = [IPAddress.Parse("10.0.2.3")];

    /// <summary>First address of the pool; null = network address + 15 (10.0.2.15), as libslirp.</summary>
    public IPAddress? PoolStart { get; set; }

    /// <summary>Number of addresses in the pool, 1..256. Default 16 (10.0.2.15–10.0.2.30), as libslirp.</summary>
    public int PoolSize { get; set; } = 16;

    /// <summary>
    /// Lease time sent in option 51, whole seconds, 1 s..0xFFFFFFFE s. Default 24 hours, libslirp's value.
    /// Leases do not expire inside the server (libslirp keeps them for the life of the process too);
    /// the value only tells the client when to renew.
    /// </summary>
    public TimeSpan LeaseTime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Domain name sent in option 15 (ASCII, 1..255 bytes); null omits it. Default null.</summary>
    public string? DomainName { get; set; }

    /// <summary>Interface MTU sent in option 26, 68..65535; null omits it. Default null (libslirp sends none).</summary>
    public int? Mtu { get; set; }
}
