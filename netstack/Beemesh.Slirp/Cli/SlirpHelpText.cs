using System.Reflection;

namespace Beemesh.Slirp.Cli;

/// <summary>
/// The usage and version texts. The usage lines are an interface: podman and rootlesskit search
/// <c>--help</c> output for option names to detect features, so every line (tabs included) is the
/// one slirp4netns 1.2 prints; only the program name differs.
/// </summary>
public static class SlirpHelpText
{
    /// <summary>The libslirp release whose behaviour the stack reproduces, reported by <c>--version</c>.</summary>
    public const string CompatibleLibslirp = "4.7.0";

    /// <summary>The SLIRP_CONFIG_VERSION_MAX level of the features offered (outbound addresses, disable-dns, ...).</summary>
    public const int SlirpConfigVersionMax = 4;

    /// <summary>The <c>--help</c> text for the given program name (argv[0]).</summary>
    public static string Usage(string programName) =>
        "Usage: " + programName + " [OPTION]... PID|PATH [TAPNAME]\n" +
        "User-mode networking for unprivileged network namespaces.\n\n" +
        "-c, --configure          bring up the interface\n" +
        "-e, --exit-fd=FD         specify the FD for terminating slirp4netns\n" +
        "-r, --ready-fd=FD        specify the FD to write to when the network is configured\n" +
        "-m, --mtu=MTU            specify MTU (default=1500, max=65521)\n" +
        "-6, --enable-ipv6        enable IPv6 (experimental)\n" +
        "-a, --api-socket=PATH    specify API socket path\n" +
        "--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24)\n" +
        "--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace\n" +
        "--netns-type=TYPE \t specify network namespace type ([path|pid], default=pid)\n" +
        "--userns-path=PATH\t specify user namespace path\n" +
        "--enable-sandbox         create a new mount namespace (and drop all caps except CAP_NET_BIND_SERVICE if running as the root)\n" +
        "--enable-seccomp         enable seccomp to limit syscalls (experimental)\n" +
        "--outbound-addr=IPv4     sets outbound ipv4 address to bound to (experimental)\n" +
        "--outbound-addr6=IPv6    sets outbound ipv6 address to bound to (experimental)\n" +
        "--disable-dns            disables 10.0.2.3 (or configured internal ip) to host dns redirect (experimental)\n" +
        "--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)\n" +
        "--target-type=TYPE       specify the target type ([netns|bess], default=netns)\n" +
        "-h, --help               show this help and exit\n" +
        "-v, --version            show version and exit\n";

    /// <summary>
    /// The <c>--version</c> text: the same machine-parsable line set as slirp4netns
    /// (name + version, commit, libslirp, SLIRP_CONFIG_VERSION_MAX), with this program's own values.
    /// slirp4netns adds a libseccomp line only when linked with libseccomp; the filter here needs no library.
    /// </summary>
    public static string Version()
    {
        string informational = typeof(SlirpHelpText).Assembly
            .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        int plus = informational.IndexOf('+');
        string version = plus < 0 ? informational : informational[..plus];
        string commit = plus < 0 ? "unknown" : informational[(plus + 1)..];
        return "beemesh-slirp version " + version + "\n" +
            "commit: " + commit + "\n" +
            "libslirp: " + CompatibleLibslirp + "\n" +
            "SLIRP_CONFIG_VERSION_MAX: " + SlirpConfigVersionMax + "\n";
    }
}
