namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>How a <see cref="SlirpSandbox"/> starts the implementation under test.</summary>
public sealed record SlirpSandboxOptions
{
    /// <summary>Arguments added before <c>PID tap0</c> (after <c>-c -r 3 -a SOCKET</c>); default none.</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>Pass <c>-e 4</c> with fd 4 the read end of a pipe the sandbox holds; default false.</summary>
    public bool WithExitFd { get; init; }

    /// <summary>
    /// When set, the implementation runs under <c>unshare -m</c> with /etc/resolv.conf bind-mounted
    /// to a file of this content, so both implementations read their DNS upstream the same way;
    /// default null (the host's resolv.conf).
    /// </summary>
    public string? ResolvConf { get; init; }

    /// <summary>
    /// When set, the implementation runs in this network namespace (<c>nsenter --net=PATH</c>) instead
    /// of the host's, so its host sockets see only what the test put there; default null.
    /// </summary>
    public string? HostNetworkNamespace { get; init; }
}
