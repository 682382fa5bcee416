using System.Net;

namespace Beemesh.Netstack.Stack;

/// <summary>
/// Addresses and behaviour of one stack instance. Defaults are slirp4netns's: 10.0.2.0/24,
/// gateway .2, DNS .3, guest .100, DHCP .15–.30, IPv6 fd00::/64 with gateway ::2 and DNS ::3.
/// </summary>
public sealed class StackOptions
{
    /// <summary>IPv4 network address. Default 10.0.2.0.</summary>
    public IPAddress Network { get; set; } = IPAddress.Parse("10.0.2.0");

    /// <summary>IPv4 prefix length. Default 24.</summary>
    public int PrefixLength { get; set; } = 24;

    /// <summary>The router address; reaches host loopback unless <see cref="DisableHostLoopback"/>. Default 10.0.2.2.</summary>
    public IPAddress Gateway { get; set; } = IPAddress.Parse("10.0.2.2");

    /// <summary>The built-in DNS forwarder's address. Default 10.0.2.3.</summary>
    public IPAddress Dns { get; set; } = IPAddress.Parse("10.0.2.3");

    /// <summary>The guest's address (what --configure assigns). Default 10.0.2.100.</summary>
    public IPAddress Guest { get; set; } = IPAddress.Parse("10.0.2.100");

    /// <summary>First address DHCP hands out. Default 10.0.2.15.</summary>
    public IPAddress DhcpStart { get; set; } = IPAddress.Parse("10.0.2.15");

    /// <summary>Serve IPv6 (router advertisements, NDP, forwarding). Default false, as slirp4netns without -6.</summary>
    public bool EnableIpv6 { get; set; }

    /// <summary>IPv6 /64 prefix advertised to the guest. Default fd00::.</summary>
    public IPAddress Ipv6Prefix { get; set; } = IPAddress.Parse("fd00::");

    /// <summary>IPv6 gateway (host loopback). Default fd00::2.</summary>
    public IPAddress Ipv6Gateway { get; set; } = IPAddress.Parse("fd00::2");

    /// <summary>IPv6 DNS forwarder address. Default fd00::3.</summary>
    public IPAddress Ipv6Dns { get; set; } = IPAddress.Parse("fd00::3");

    /// <summary>Link MTU. Default 1500; slirp4netns allows up to 65521.</summary>
    public int Mtu { get; set; } = 1500;

    /// <summary>MAC address the stack answers with for every address it owns. Default 52:55:0a:00:02:02.</summary>
    public string RouterMac { get; set; } = "52:55:0a:00:02:02";

    /// <summary>Refuse guest connections to the gateway address instead of reaching host loopback. Default false.</summary>
    public bool DisableHostLoopback { get; set; }

    /// <summary>Source address for outbound IPv4 host sockets (--outbound-addr). Default none.</summary>
    public IPAddress? OutboundAddress { get; set; }

    /// <summary>Source address for outbound IPv6 host sockets (--outbound-addr6). Default none.</summary>
    public IPAddress? OutboundAddress6 { get; set; }

    /// <summary>Do not forward DNS at the DNS address (--disable-dns). Default false.</summary>
    public bool DisableDns { get; set; }

    /// <summary>Where DNS queries to the DNS address go; null = nothing answers. Set from resolv.conf by the front end.</summary>
    public IPEndPoint? DnsUpstream { get; set; }

    /// <summary>Idle time after which a UDP mapping is forgotten. Default 240 s (libslirp's socket expiry).</summary>
    public TimeSpan UdpTimeout { get; set; } = TimeSpan.FromSeconds(240);

    /// <summary>Idle time for UDP mappings to the DNS forwarder. Default 10 s.</summary>
    public TimeSpan DnsUdpTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Most TCP flows at once; SYNs beyond it are refused with RST and counted. Default 65536.</summary>
    public int MaxTcpFlows { get; set; } = 65536;

    /// <summary>Most guest SYNs waiting for their host connect at once (SYN-flood bound). Default 1024.</summary>
    public int MaxPendingConnects { get; set; } = 1024;

    /// <summary>Most UDP mappings at once; the oldest is evicted beyond it. Default 4096.</summary>
    public int MaxUdpFlows { get; set; } = 4096;

    /// <summary>
    /// Most of those that go to the DNS forwarder; beyond it the oldest DNS mapping is evicted, never
    /// another mapping. Default 1024. A guest flooding the DNS address from ever new ports then only
    /// churns its own share, and a normal query lives until its answer unless 1024 newer queries
    /// arrive first; refusing new mappings instead would starve every query once the table filled.
    /// </summary>
    public int MaxDnsFlows { get; set; } = 1024;

    /// <summary>
    /// Queries one DNS mapping (one guest source port) may forward per second, with a burst of as many;
    /// beyond it queries are dropped and counted. Default 100. A flood from one port would otherwise
    /// take the upstream resolver's whole capacity, and its socket would drop the other queries.
    /// </summary>
    public int DnsQueriesPerSecondPerFlow { get; set; } = 100;

    /// <summary>
    /// Idle time after which a guest TCP flow is probed with a keepalive (RFC 1122 §4.2.3.6); null never
    /// probes. Default 60 s. A guest socket that is gone (its FIN-WAIT-2 timed out, its namespace died)
    /// answers the probe with RST, and the flow and its host socket are closed; without probes such a
    /// half-dead flow would pin a host socket for as long as the host peer keeps it open. RFC 1122's
    /// two-hour floor is for probes across the Internet; these stay on the local link.
    /// </summary>
    public TimeSpan? TcpKeepAliveIdle { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Time between unanswered keepalive probes. Default 10 s.</summary>
    public TimeSpan TcpKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Unanswered keepalive probes after which the flow is reset on both sides. Default 3.</summary>
    public int TcpKeepAliveProbes { get; set; } = 3;

    /// <summary>
    /// Congestion control of the stack's sending side of every guest TCP flow (host to guest).
    /// Default NewReno; CUBIC (RFC 9438) differs only after a loss: it cuts the window to 0.7
    /// rather than half and grows it back by the cubic curve.
    /// </summary>
    public Tcp.TcpCongestionControl TcpCongestionControl { get; set; } = Tcp.TcpCongestionControl.NewReno;

    /// <summary>
    /// After a burst, memory is given back once the stack's footprint (flows, TIME-WAIT included, plus
    /// KiB in hold buffers) fell to half its peak and by at least this much: the flow tables shrink,
    /// idle hold buffers are let go and a compacting full collection decommits the heap the burst
    /// used, at most once every 10 s. 0 turns it off. Default 1024 (about 1 MiB).
    /// </summary>
    public int MemoryTrimMinReleasedFlows { get; set; } = 1024;
}
