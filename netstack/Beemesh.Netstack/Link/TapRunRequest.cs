namespace Beemesh.Netstack.Link;

/// <summary>
/// What <see cref="TapRunner.Start"/> should do: run <see cref="Command"/> in new user, mount, PID
/// and network namespaces (our uid/gid mapped to root, like <c>unshare -r</c>) whose tap is
/// configured as given.
/// </summary>
public sealed record TapRunRequest
{
    /// <summary>Program and arguments to run once the stack is ready; looked up on PATH. Required.</summary>
    public required IReadOnlyList<string> Command { get; init; }

    /// <summary>Path of the helper; null = <c>beemesh-nsenter</c> next to the running executable, else on PATH.</summary>
    public string? NsenterPath { get; init; }

    /// <summary>Interface name to create. Default <c>tap0</c>.</summary>
    public string TapName { get; init; } = "tap0";

    /// <summary>Open with IFF_VNET_HDR and try TUNSETOFFLOAD (checksum, TSO4, TSO6). Default false.</summary>
    public bool VnetHeader { get; init; }

    /// <summary>MTU of the tap. Default 1500.</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>IPv4 address with prefix. Default <c>10.0.2.100/24</c>.</summary>
    public string Address { get; init; } = "10.0.2.100/24";

    /// <summary>Default-route gateway. Default <c>10.0.2.2</c>.</summary>
    public string Gateway { get; init; } = "10.0.2.2";

    /// <summary>MAC address (<c>02:00:00:00:00:01</c> form); null = kernel's random one.</summary>
    public string? Mac { get; init; }

    /// <summary>Make the tap accept router advertisements (accept_ra=2). Default false.</summary>
    public bool Ipv6 { get; init; }

    /// <summary>Capture the command's stdout in <see cref="System.Diagnostics.Process.StandardOutput"/>. Default false (inherited).</summary>
    public bool RedirectStandardOutput { get; init; }

    /// <summary>A file the command sees as /etc/resolv.conf (a private mount namespace), or null to keep the host's.</summary>
    public string? ResolvConf { get; init; }

    /// <summary>
    /// A directory the command must not see (e.g. the node agent's state directory): covered
    /// read-only by <see cref="HideDirectoryWith"/> or by an empty tmpfs. The cover is locked: root in
    /// the command's user namespace cannot unmount it. Null = nothing hidden. Must exist.
    /// </summary>
    public string? HideDirectory { get; init; }

    /// <summary>A directory shown read-only in place of <see cref="HideDirectory"/>; null = an empty tmpfs.</summary>
    public string? HideDirectoryWith { get; init; }

    /// <summary>Variables added to (or replacing) the command's environment; null = none.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>
    /// Ports (at most 4) to listen on at 127.0.0.1 inside the command's network namespace, before
    /// the command starts: <see cref="TapRunner.TakeListener"/> hands out each socket. The
    /// command can connect to them but cannot bind them. Empty = none.
    /// </summary>
    public IReadOnlyList<int> ListenPorts { get; init; } = [];
}
