using System.Net;
using System.Net.Sockets;

namespace Beemesh.Netstack.Dns;

/// <summary>
/// Chooses the upstream name server the DNS forwarder at 10.0.2.3 sends guest queries to.
/// </summary>
/// <remarks>
/// <para>Precedence, first match wins:</para>
/// <list type="number">
/// <item>an explicit endpoint passed by the caller (tests, command line);</item>
/// <item>the <c>BEEMESH_DNS_UPSTREAM</c> environment variable (<c>127.0.0.1:5353</c>,
/// <c>[::1]:5353</c>, or an address alone for port 53);</item>
/// <item>the first usable name server of resolv.conf, in file order, on port 53;</item>
/// <item><see cref="Fallback"/>, 127.0.0.1:53.</item>
/// </list>
/// <para>
/// Loopback name servers (systemd-resolved's 127.0.0.53, a local dnsmasq) are usable: the
/// forwarder's sockets live in the host's network namespace, not the guest's, so they reach
/// the host's loopback. Unusable: the unspecified address (0.0.0.0, ::), multicast, the IPv4
/// broadcast address, and IPv6 link-local addresses without a resolved zone (no interface to
/// send on).
/// </para>
/// <para>
/// The fallback is 127.0.0.1:53 because that is what the glibc resolver itself uses when
/// resolv.conf names no server, so the guest sees the same answers a host program would.
/// </para>
/// </remarks>
public static class DnsUpstreamSelector
{
    /// <summary>Environment variable that overrides the upstream (tests point it at a loopback server).</summary>
    public const string OverrideVariable = "BEEMESH_DNS_UPSTREAM";

    /// <summary>The upstream used when nothing else names one: 127.0.0.1:53, glibc's default.</summary>
    public static IPEndPoint Fallback => new(IPAddress.Loopback, ResolvConf.DnsPort);

    /// <summary>Chooses the upstream from the process environment and a resolv.conf file.</summary>
    /// <param name="resolvConfPath">The resolv.conf to read; default <c>/etc/resolv.conf</c>.</param>
    /// <returns>The upstream endpoint.</returns>
    /// <exception cref="FormatException"><c>BEEMESH_DNS_UPSTREAM</c> is set but is not an endpoint; the message says so in one line.</exception>
    public static IPEndPoint SelectFromEnvironment(string resolvConfPath = ResolvConf.DefaultPath)
    {
        string? overrideText = Environment.GetEnvironmentVariable(OverrideVariable);
        if (!string.IsNullOrWhiteSpace(overrideText))
        {
            return ParseOverride(overrideText);
        }

        return Select(ResolvConf.Load(resolvConfPath));
    }

    /// <summary>Chooses the upstream from parsed configuration and optional overrides.</summary>
    /// <param name="resolvConf">The parsed resolv.conf.</param>
    /// <param name="explicitUpstream">An endpoint that wins over everything; null for none.</param>
    /// <param name="environmentOverride">The value of <c>BEEMESH_DNS_UPSTREAM</c>; null or blank for none.</param>
    /// <returns>The upstream endpoint.</returns>
    /// <exception cref="FormatException"><paramref name="environmentOverride"/> is not an endpoint.</exception>
    public static IPEndPoint Select(ResolvConf resolvConf, IPEndPoint? explicitUpstream = null, string? environmentOverride = null)
    {
        ArgumentNullException.ThrowIfNull(resolvConf);
        if (explicitUpstream is not null)
        {
            return explicitUpstream;
        }

        if (!string.IsNullOrWhiteSpace(environmentOverride))
        {
            return ParseOverride(environmentOverride);
        }

        foreach (IPEndPoint upstream in resolvConf.Upstreams)
        {
            if (IsUsable(upstream.Address))
            {
                return upstream;
            }
        }

        return Fallback;
    }

    /// <summary>All usable resolv.conf name servers in file order, for a forwarder that fails over.</summary>
    /// <param name="resolvConf">The parsed resolv.conf.</param>
    /// <returns>The usable upstreams; <see cref="Fallback"/> alone when there are none.</returns>
    public static IReadOnlyList<IPEndPoint> SelectAll(ResolvConf resolvConf)
    {
        ArgumentNullException.ThrowIfNull(resolvConf);
        var usable = new List<IPEndPoint>();
        foreach (IPEndPoint upstream in resolvConf.Upstreams)
        {
            if (IsUsable(upstream.Address))
            {
                usable.Add(upstream);
            }
        }

        if (usable.Count == 0)
        {
            usable.Add(Fallback);
        }

        return usable;
    }

    /// <summary>Whether the forwarder can send to a name server at this address (see the type's remarks).</summary>
    /// <param name="address">The name server address.</param>
    /// <returns>True when usable.</returns>
    public static bool IsUsable(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            address.TryWriteBytes(b, out _);
            bool unspecified = b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0;
            bool multicast = b[0] is >= 224 and <= 239;
            bool broadcast = b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255;
            return !unspecified && !multicast && !broadcast;
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (address.Equals(IPAddress.IPv6Any) || address.IsIPv6Multicast)
            {
                return false;
            }

            return !address.IsIPv6LinkLocal || address.ScopeId != 0;
        }

        return false;
    }

    /// <summary>Parses an override such as <c>127.0.0.1:5353</c>, <c>[::1]:5353</c>, <c>::1</c> or <c>127.0.0.1</c> (port 53).</summary>
    /// <param name="text">The text.</param>
    /// <param name="endPoint">The endpoint when the method returns true.</param>
    /// <returns>False when the text is not an IP endpoint.</returns>
    public static bool TryParseEndPoint(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (ResolvConf.TryParseAddress(text, out IPAddress? bare))
        {
            endPoint = new IPEndPoint(bare, ResolvConf.DnsPort);
            return true;
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > 65535)
        {
            return false;
        }

        string host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
            if (!host.Contains(':'))
            {
                return false;
            }
        }
        else if (host.Contains(':'))
        {
            // An unbracketed IPv6 address with a port is ambiguous (RFC 5952 §6).
            return false;
        }

        if (!ResolvConf.TryParseAddress(host, out IPAddress? address))
        {
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }

    private static IPEndPoint ParseOverride(string text) =>
        TryParseEndPoint(text, out IPEndPoint? endPoint)
            ? endPoint
            : throw new FormatException($"{OverrideVariable}: '{text}' is not an IP endpoint (expected e.g. 127.0.0.1:5353 or [::1]:5353).");
}
