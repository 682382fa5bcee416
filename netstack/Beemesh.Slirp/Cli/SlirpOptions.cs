using System.Net;

namespace Beemesh.Slirp.Cli;

/// <summary>
/// Every setting of a slirp4netns 1.2 command line, with the addresses derived from <c>--cidr</c>
/// the way slirp4netns derives them (network + 2, + 3, + 15, + 100).
/// </summary>
public sealed record SlirpOptions
{
    /// <summary>The first positional argument as given: a PID, a namespace path, or the BESS socket path.</summary>
    public required string Target { get; init; }

    /// <summary>The target process id when <see cref="NetnsType"/> is Pid (and the target is a netns); otherwise null.</summary>
    public int? TargetPid { get; init; }

    /// <summary>The namespace path when <see cref="NetnsType"/> is Path; otherwise null.</summary>
    public string? NetnsPath { get; init; }

    /// <summary>Name of the tap device to create in the namespace. Default "tap0" (only unset in BESS mode).</summary>
    public string TapName { get; init; } = "tap0";

    /// <summary><c>-c</c>: bring the interface up, assign the recommended address and default route.</summary>
    public bool Configure { get; init; }

    /// <summary><c>-e</c>: fd whose closing (hang-up) terminates the process; null when not given.</summary>
    public int? ExitFd { get; init; }

    /// <summary><c>-r</c>: fd to write "1" to when the network is configured; null when not given.</summary>
    public int? ReadyFd { get; init; }

    /// <summary><c>-m</c>: MTU of the tap; 1 to 65521, default 1500.</summary>
    public int Mtu { get; init; } = SlirpDefaults.Mtu;

    /// <summary><c>-6</c>: enable IPv6 (fd00::/64).</summary>
    public bool EnableIpv6 { get; init; }

    /// <summary><c>-a</c>: path of the JSON API socket; null when not given.</summary>
    public string? ApiSocket { get; init; }

    /// <summary><c>--cidr</c> as normalised text; default "10.0.2.0/24".</summary>
    public string Cidr { get; init; } = SlirpDefaults.Cidr;

    /// <summary>Network address of <see cref="Cidr"/>; default 10.0.2.0.</summary>
    public IPAddress Network { get; init; } = IPAddress.Parse("10.0.2.0");

    /// <summary>Prefix length of <see cref="Cidr"/>, 1 to 25; default 24.</summary>
    public int PrefixLength { get; init; } = 24;

    /// <summary>Netmask of <see cref="Cidr"/>; default 255.255.255.0.</summary>
    public IPAddress Netmask { get; init; } = IPAddress.Parse("255.255.255.0");

    /// <summary>Gateway (the host) = network + 2; default 10.0.2.2.</summary>
    public IPAddress Gateway { get; init; } = IPAddress.Parse("10.0.2.2");

    /// <summary>Built-in DNS forwarder = network + 3; default 10.0.2.3.</summary>
    public IPAddress Dns { get; init; } = IPAddress.Parse("10.0.2.3");

    /// <summary>First DHCP lease = network + 15 (16 leases); default 10.0.2.15.</summary>
    public IPAddress DhcpStart { get; init; } = IPAddress.Parse("10.0.2.15");

    /// <summary>Recommended guest address (set by <c>-c</c>, default hostfwd target) = network + 100; default 10.0.2.100.</summary>
    public IPAddress Guest { get; init; } = IPAddress.Parse("10.0.2.100");

    /// <summary><c>--disable-host-loopback</c> (or the deprecated <c>--no-host-loopback</c>).</summary>
    public bool DisableHostLoopback { get; init; }

    /// <summary><c>--netns-type</c>: pid (default) or path; any value other than "pid" means path, as in slirp4netns.</summary>
    public SlirpNetnsType NetnsType { get; init; } = SlirpNetnsType.Pid;

    /// <summary><c>--userns-path</c>: user namespace to join before the network namespace; null when not given.</summary>
    public string? UsernsPath { get; init; }

    /// <summary><c>--enable-sandbox</c> (or the deprecated <c>--create-sandbox</c>).</summary>
    public bool EnableSandbox { get; init; }

    /// <summary><c>--enable-seccomp</c>.</summary>
    public bool EnableSeccomp { get; init; }

    /// <summary><c>--outbound-addr</c> resolved to an IPv4 address (given directly or as an interface name); null when not given.</summary>
    public IPAddress? OutboundAddr { get; init; }

    /// <summary><c>--outbound-addr6</c> resolved to an IPv6 address; null when not given.</summary>
    public IPAddress? OutboundAddr6 { get; init; }

    /// <summary><c>--disable-dns</c>: no DNS forwarder at <see cref="Dns"/>.</summary>
    public bool DisableDns { get; init; }

    /// <summary><c>--macaddress</c> (only with <c>-c</c>): six bytes; a shorter MAC is zero-padded as slirp4netns does. Null when not given.</summary>
    public byte[]? MacAddress { get; init; }

    /// <summary><c>--target-type</c>: netns (default) or bess.</summary>
    public SlirpTargetType TargetType { get; init; } = SlirpTargetType.Netns;

    /// <summary>IPv6 prefix (fixed, as in slirp4netns): fd00::.</summary>
    public IPAddress Ipv6Prefix { get; init; } = IPAddress.Parse("fd00::");

    /// <summary>IPv6 prefix length (fixed): 64.</summary>
    public int Ipv6PrefixLength { get; init; } = 64;

    /// <summary>IPv6 gateway (fixed): fd00::2.</summary>
    public IPAddress Ipv6Gateway { get; init; } = IPAddress.Parse("fd00::2");

    /// <summary>IPv6 DNS (fixed): fd00::3.</summary>
    public IPAddress Ipv6Dns { get; init; } = IPAddress.Parse("fd00::3");
}
