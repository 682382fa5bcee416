using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Beemesh.Netstack.Dns;

/// <summary>
/// The parts of a resolv.conf(5) file the DNS forwarder needs: name servers, search domains
/// and options. Parsing never throws on content: unknown keywords, unparsable addresses and
/// garbage lines are skipped (the glibc resolver skips them too).
/// </summary>
/// <remarks>
/// Rules, following resolv.conf(5) and glibc's reader:
/// <list type="bullet">
/// <item>A line whose first non-blank character is <c>#</c> or <c>;</c> is a comment; on other
/// lines a <c>#</c> or <c>;</c> that starts a word begins a trailing comment.</item>
/// <item><c>nameserver ADDRESS</c>: one IPv4 or IPv6 address; an IPv6 zone (<c>fe80::1%eth0</c>,
/// <c>fe80::1%2</c>) becomes the address's scope id; a named zone that names no interface here
/// leaves the scope id 0. Duplicates are kept once, in first-seen order. All are kept, not just
/// glibc's first three; <see cref="DnsUpstreamSelector"/> decides which to use.</item>
/// <item><c>search</c> and <c>domain</c> replace each other: the last such line wins; <c>domain</c>
/// sets a one-entry search list.</item>
/// <item><c>options</c>: words accumulate over all options lines, in order.</item>
/// </list>
/// </remarks>
public sealed class ResolvConf
{
    /// <summary>The DNS port name servers listen on.</summary>
    public const int DnsPort = 53;

    /// <summary>The default location of the file.</summary>
    public const string DefaultPath = "/etc/resolv.conf";

    private ResolvConf(IReadOnlyList<IPAddress> nameservers, IReadOnlyList<string> search, IReadOnlyList<string> options)
    {
        Nameservers = nameservers;
        Search = search;
        Options = options;
        var upstreams = new IPEndPoint[nameservers.Count];
        for (int i = 0; i < upstreams.Length; i++)
        {
            upstreams[i] = new IPEndPoint(nameservers[i], DnsPort);
        }

        Upstreams = upstreams;
    }

    /// <summary>Name server addresses in file order, without duplicates.</summary>
    public IReadOnlyList<IPAddress> Nameservers { get; }

    /// <summary>The name servers as endpoints on port 53, same order.</summary>
    public IReadOnlyList<IPEndPoint> Upstreams { get; }

    /// <summary>Search domains (from the last <c>search</c> or <c>domain</c> line).</summary>
    public IReadOnlyList<string> Search { get; }

    /// <summary>Option words as written (<c>ndots:5</c>, <c>edns0</c>, ...).</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>An empty configuration: no name servers, no search, no options.</summary>
    public static ResolvConf Empty { get; } = new([], [], []);

    /// <summary>Parses resolv.conf text.</summary>
    /// <param name="text">The file's content.</param>
    /// <returns>The configuration; never null.</returns>
    public static ResolvConf Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var nameservers = new List<IPAddress>();
        IReadOnlyList<string> search = [];
        var options = new List<string>();

        foreach (string rawLine in text.Split('\n'))
        {
            string[] words = SplitWords(rawLine);
            if (words.Length == 0)
            {
                continue;
            }

            switch (words[0])
            {
                case "nameserver" when words.Length >= 2:
                    if (TryParseAddress(words[1], out IPAddress? address) && !ContainsAddress(nameservers, address))
                    {
                        nameservers.Add(address);
                    }

                    break;
                case "search":
                    search = words[1..];
                    break;
                case "domain" when words.Length >= 2:
                    search = [words[1]];
                    break;
                case "options":
                    options.AddRange(words[1..]);
                    break;
                default:
                    break;
            }
        }

        return new ResolvConf(nameservers, search, options);
    }

    /// <summary>Reads and parses a resolv.conf file. A missing file gives <see cref="Empty"/>, as the resolver treats it.</summary>
    /// <param name="path">The file; default <c>/etc/resolv.conf</c>.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened.</exception>
    public static ResolvConf Load(string path = DefaultPath)
    {
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Empty;
        }
    }

    /// <summary>
    /// Parses one name server address, with an optional IPv6 zone after <c>%</c> (numeric, or an
    /// interface name resolved to its index when such an interface exists here).
    /// </summary>
    /// <param name="text">The address text.</param>
    /// <param name="address">The address, when the method returns true.</param>
    /// <returns>False when the text is not an IP address.</returns>
    public static bool TryParseAddress(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        // IPAddress.TryParse also takes "[::1]:5353" (dropping the port); a bare address has no brackets.
        if (string.IsNullOrEmpty(text) || text.AsSpan().IndexOfAny('[', ']') >= 0)
        {
            return false;
        }

        int percent = text.IndexOf('%');
        string host = percent < 0 ? text : text[..percent];
        string? zone = percent < 0 ? null : text[(percent + 1)..];
        if (!IPAddress.TryParse(host, out IPAddress? parsed) || host.Contains('%'))
        {
            return false;
        }

        // IPAddress.TryParse also accepts forms like "1" or "1.2.3"; resolv.conf wants dotted quads.
        if (parsed.AddressFamily == AddressFamily.InterNetwork && (zone is not null || host.AsSpan().Count('.') != 3))
        {
            return false;
        }

        if (parsed.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (!host.Contains(':'))
            {
                return false;
            }

            if (zone is not null)
            {
                if (zone.Length == 0)
                {
                    return false;
                }

                parsed.ScopeId = ResolveZone(zone);
            }
        }

        address = parsed;
        return true;
    }

    private static long ResolveZone(string zone)
    {
        if (uint.TryParse(zone, NumberStyles.None, CultureInfo.InvariantCulture, out uint index))
        {
            return index;
        }

        try
        {
            foreach (NetworkInterface nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.Name == zone && nic.Supports(NetworkInterfaceComponent.IPv6))
                {
                    return nic.GetIPProperties().GetIPv6Properties().Index;
                }
            }
        }
        catch (NetworkInformationException)
        {
            // No interface list: leave the zone unresolved.
        }

        return 0;
    }

    private static bool ContainsAddress(List<IPAddress> list, IPAddress address)
    {
        foreach (IPAddress existing in list)
        {
            // IPAddress.Equals compares the scope id too, so fe80::1%1 and fe80::1%2 stay distinct.
            if (existing.Equals(address))
            {
                return true;
            }
        }

        return false;
    }

    private static string[] SplitWords(string line)
    {
        string[] words = line.Split([' ', '\t', '\r', '\f', '\v'], StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < words.Length; i++)
        {
            if (words[i][0] is '#' or ';')
            {
                return words[..i];
            }
        }

        return words;
    }
}
