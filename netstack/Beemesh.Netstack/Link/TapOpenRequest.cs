namespace Beemesh.Netstack.Link;

/// <summary>
/// What <see cref="TapOpener.Open"/> should do: which namespace to enter (exactly one of
/// <see cref="Pid"/> or <see cref="NetnsPath"/>), the tap to create there, and, with
/// <see cref="Configure"/>, how to set it up (slirp4netns <c>--configure</c> defaults).
/// </summary>
public sealed record TapOpenRequest
{
    /// <summary>Path of the helper; null = <c>beemesh-nsenter</c> next to the running executable, else on PATH.</summary>
    public string? NsenterPath { get; init; }

    /// <summary>Enter the user (if different from ours) and network namespaces of this process.</summary>
    public int? Pid { get; init; }

    /// <summary>Enter the network namespace at this path (e.g. <c>/run/netns/x</c>) instead of a PID's.</summary>
    public string? NetnsPath { get; init; }

    /// <summary>
    /// The user namespace joined before the network namespace (slirp4netns <c>--userns-path</c>, with a
    /// PID or a path target). Null = the PID's own user namespace, or ours with <see cref="NetnsPath"/>.
    /// </summary>
    public string? UsernsPath { get; init; }

    /// <summary>Interface name to create. Default <c>tap0</c>.</summary>
    public string TapName { get; init; } = "tap0";

    /// <summary>Open with IFF_VNET_HDR and try TUNSETOFFLOAD (checksum, TSO4, TSO6). Default false.</summary>
    public bool VnetHeader { get; init; }

    /// <summary>Set MAC, MTU, IPv4 address, bring tap and lo up, add the default route. Default false.</summary>
    public bool Configure { get; init; }

    /// <summary>MTU set by <see cref="Configure"/>. Default 1500.</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>IPv4 address with prefix set by <see cref="Configure"/>. Default <c>10.0.2.100/24</c>.</summary>
    public string Address { get; init; } = "10.0.2.100/24";

    /// <summary>Default-route gateway set by <see cref="Configure"/>. Default <c>10.0.2.2</c>.</summary>
    public string Gateway { get; init; } = "10.0.2.2";

    /// <summary>MAC address (<c>02:00:00:00:00:01</c> form) set by <see cref="Configure"/>; null = kernel's random one.</summary>
    public string? Mac { get; init; }

    /// <summary>With <see cref="Configure"/>: make the tap accept router advertisements (accept_ra=2). Default false.</summary>
    public bool Ipv6 { get; init; }
}
