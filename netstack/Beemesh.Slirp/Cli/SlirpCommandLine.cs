using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Slirp.Cli;

/// <summary>
/// Parses the slirp4netns 1.2 command line with the same acceptance rules, messages, order of checks
/// and exit codes as slirp4netns (its option loop, then its configuration checks), so podman,
/// rootlesskit and scripts see no difference except the program name.
/// </summary>
public static class SlirpCommandLine
{
    private const string ShortOptions = "ce:r:m:a:6hv";

    // Values of options that have no short form; the numbers only need to be distinct from characters.
    private const int Cidr = -42;
    private const int DisableHostLoopback = -43;
    private const int NetnsType = -44;
    private const int UsernsPath = -45;
    private const int EnableSandbox = -46;
    private const int EnableSeccomp = -47;
    private const int OutboundAddr = -48;
    private const int OutboundAddr6 = -49;
    private const int DisableDns = -50;
    private const int MacAddress = -51;
    private const int TargetType = -52;
    private const int DeprecatedNoHostLoopback = -10043;
    private const int DeprecatedCreateSandbox = -10044;

    // Table order matters: getopt lists ambiguous candidates in this order.
    private static readonly GetoptLong.LongOption[] LongOptions =
    [
        new("configure", false, 'c'),
        new("exit-fd", true, 'e'),
        new("ready-fd", true, 'r'),
        new("mtu", true, 'm'),
        new("cidr", true, Cidr),
        new("disable-host-loopback", false, DisableHostLoopback),
        new("no-host-loopback", false, DeprecatedNoHostLoopback),
        new("netns-type", true, NetnsType),
        new("userns-path", true, UsernsPath),
        new("api-socket", true, 'a'),
        new("enable-ipv6", false, '6'),
        new("enable-sandbox", false, EnableSandbox),
        new("create-sandbox", false, DeprecatedCreateSandbox),
        new("enable-seccomp", false, EnableSeccomp),
        new("help", false, 'h'),
        new("version", false, 'v'),
        new("outbound-addr", true, OutboundAddr),
        new("outbound-addr6", true, OutboundAddr6),
        new("disable-dns", false, DisableDns),
        new("macaddress", true, MacAddress),
        new("target-type", true, TargetType),
    ];

    /// <summary>Parses <paramref name="args"/> (without argv[0]); messages name the program as it was invoked.</summary>
    public static SlirpParseResult Parse(string[] args) => Parse(args, InvokedProgramName());

    /// <summary>Parses <paramref name="args"/> (without argv[0]); <paramref name="programName"/> stands where slirp4netns prints argv[0].</summary>
    public static SlirpParseResult Parse(string[] args, string programName) =>
        Parse(args, programName, SlirpCommandLineEnvironment.System);

    /// <summary>argv[0] of this process, as C code would see it.</summary>
    public static string InvokedProgramName()
    {
        try
        {
            byte[] cmdline = File.ReadAllBytes("/proc/self/cmdline");
            int nul = Array.IndexOf(cmdline, (byte)0);
            string first = Encoding.UTF8.GetString(cmdline, 0, nul < 0 ? cmdline.Length : nul);
            if (first.Length > 0 && Path.GetFileName(first) != "dotnet")
            {
                return first;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        string[] commandLine = Environment.GetCommandLineArgs();
        return commandLine.Length > 0 ? commandLine[0] : "beemesh-slirp";
    }

    internal static SlirpParseResult Parse(string[] args, string programName, SlirpCommandLineEnvironment environment)
    {
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var getopt = new GetoptLong(programName, args, ShortOptions, LongOptions, environment.PosixlyCorrect);

        bool configure = false, disableHostLoopback = false, enableIpv6 = false, enableSandbox = false;
        bool enableSeccomp = false, disableDns = false;
        int? exitFd = null, readyFd = null;
        int mtu = SlirpDefaults.Mtu;
        string? cidr = null, netnsType = null, usernsPath = null, apiSocket = null;
        string? outboundAddr = null, outboundAddr6 = null, macAddress = null, targetType = null;

        SlirpParseResult Fail(string message)
        {
            stderr.Append(message);
            stdout.Append(SlirpHelpText.Usage(programName));
            return new SlirpParseResult(SlirpParseOutcome.Error, null, stdout.ToString(), stderr.ToString(), 1);
        }

        int opt;
        while ((opt = getopt.Next(out string? optarg)) != GetoptLong.End)
        {
            string value = optarg ?? string.Empty;
            switch (opt)
            {
                case 'c':
                    configure = true;
                    break;
                case 'e':
                    if (!CText.TryStrtol(value, out long e) || unchecked((int)e) < 0)
                    {
                        return Fail("exit-fd must be a non-negative integer\n");
                    }

                    exitFd = unchecked((int)e);
                    break;
                case 'r':
                    if (!CText.TryStrtol(value, out long r) || unchecked((int)r) < 0)
                    {
                        return Fail("ready-fd must be a non-negative integer\n");
                    }

                    readyFd = unchecked((int)r);
                    break;
                case 'm':
                    // slirp4netns stores strtol's long in an unsigned int, so the range check sees the truncated value.
                    uint m = 0;
                    if (!CText.TryStrtol(value, out long mLong) || (m = unchecked((uint)mLong)) == 0 || m > SlirpDefaults.MaxMtu)
                    {
                        return Fail("MTU must be a positive integer (< 65522)\n");
                    }

                    mtu = (int)m;
                    break;
                case Cidr:
                    cidr = value;
                    break;
                case DeprecatedNoHostLoopback:
                    stdout.Append("WARNING: --no-host-loopback is deprecated and will be removed in future releases, please use --disable-host-loopback instead.\n");
                    disableHostLoopback = true;
                    break;
                case DisableHostLoopback:
                    disableHostLoopback = true;
                    break;
                case DeprecatedCreateSandbox:
                    stdout.Append("WARNING: --create-sandbox is deprecated and will be removed in future releases, please use --enable-sandbox instead.\n");
                    enableSandbox = true;
                    break;
                case EnableSandbox:
                    enableSandbox = true;
                    break;
                case EnableSeccomp:
                    stdout.Append("WARNING: Support for seccomp is experimental\n");
                    enableSeccomp = true;
                    break;
                case NetnsType:
                    netnsType = value;
                    break;
                case UsernsPath:
                    usernsPath = value;
                    if (environment.PathErrno(value) != 0)
                    {
                        return Fail("userns path doesn't exist: " + value + "\n");
                    }

                    break;
                case 'a':
                    apiSocket = value;
                    break;
                case '6':
                    enableIpv6 = true;
                    stdout.Append("WARNING: Support for IPv6 is experimental\n");
                    break;
                case 'h':
                    stdout.Append(SlirpHelpText.Usage(programName));
                    return new SlirpParseResult(SlirpParseOutcome.Help, null, stdout.ToString(), string.Empty, 0);
                case 'v':
                    stdout.Append(SlirpHelpText.Version());
                    return new SlirpParseResult(SlirpParseOutcome.Version, null, stdout.ToString(), string.Empty, 0);
                case OutboundAddr:
                    stdout.Append("WARNING: Support for --outbound-addr is experimental\n");
                    outboundAddr = value;
                    break;
                case OutboundAddr6:
                    stdout.Append("WARNING: Support for --outbound-addr6 is experimental\n");
                    outboundAddr6 = value;
                    break;
                case DisableDns:
                    disableDns = true;
                    break;
                case MacAddress:
                    macAddress = value;
                    break;
                case TargetType:
                    targetType = value;
                    break;
                default:
                    return Fail(getopt.Errors.ToString());
            }
        }

        if (macAddress is not null && !configure)
        {
            return Fail("--macaddr cannot be specified when --configure or -c is not specified\n");
        }

        IReadOnlyList<string> operands = getopt.Operands;
        string target;
        string tapName = "tap0";
        int? targetPid = null;
        string? netnsPath = null;
        SlirpNetnsType resolvedNetnsType = SlirpNetnsType.Pid;
        SlirpTargetType resolvedTargetType;
        if (targetType == "bess")
        {
            resolvedTargetType = SlirpTargetType.Bess;
            if (operands.Count < 1)
            {
                return Fail(string.Empty);
            }

            if (operands.Count > 1)
            {
                return Fail("too many arguments\n");
            }

            target = operands[0];
            if (configure)
            {
                return Fail("--configure conflicts with --target-type=bess\n");
            }

            if (netnsType is not null)
            {
                return Fail("--netns-type conflicts with --target-type=bess\n");
            }

            if (usernsPath is not null)
            {
                return Fail("--userns-path conflicts with --target-type=bess\n");
            }

            stdout.Append("WARNING: BESS mode is experimental\n");
        }
        else
        {
            resolvedTargetType = SlirpTargetType.Netns;
            if (targetType is not null && targetType != "netns")
            {
                return Fail("--target-type must be either \"netns\" or \"bess\"\n");
            }

            if (operands.Count < 2)
            {
                return Fail(string.Empty);
            }

            if (operands.Count > 2)
            {
                // slirp4netns only warns, for compatibility with callers that pass extra words.
                stdout.Append("WARNING: too many arguments\n");
            }

            target = operands[0];
            if (netnsType is null || netnsType == "pid")
            {
                if (!CText.TryStrtol(target, out long pid) || unchecked((int)pid) <= 0)
                {
                    return Fail("PID must be a positive integer\n");
                }

                targetPid = unchecked((int)pid);
            }
            else
            {
                resolvedNetnsType = SlirpNetnsType.Path;
                netnsPath = target;
                int errno = environment.PathErrno(target);
                if (errno != 0)
                {
                    return Fail("existing path expected when --netns-type=path: " + SlirpCommandLineEnvironment.ErrnoMessage(errno) + "\n");
                }
            }

            tapName = operands[1];
        }

        // Configuration checks: slirp4netns prints these without the usage text.
        SlirpParseResult ConfigFail(string message)
        {
            stderr.Append(message);
            return new SlirpParseResult(SlirpParseOutcome.Error, null, stdout.ToString(), stderr.ToString(), 1);
        }

        string cidrText = cidr ?? SlirpDefaults.Cidr;
        if (!TryParseCidr(cidrText, out uint network, out int prefix, out string? cidrError))
        {
            return ConfigFail(cidrError);
        }

        IPAddress? outbound = null;
        if (outboundAddr is not null)
        {
            if (!CText.TryParseIpv4(outboundAddr, out IPAddress parsed))
            {
                IPAddress? fromInterface = environment.InterfaceAddress(outboundAddr, AddressFamily.InterNetwork);
                if (fromInterface is null)
                {
                    return ConfigFail("outbound-addr has to be valid ipv4 address or interface name.");
                }

                parsed = fromInterface;
            }

            outbound = parsed;
        }

        IPAddress? outbound6 = null;
        if (outboundAddr6 is not null)
        {
            if (!CText.TryParseIpv6(outboundAddr6, out IPAddress parsed))
            {
                // slirp4netns 1.2 looks the interface up under the --outbound-addr value (not --outbound-addr6),
                // and its message says "ipv4" and "iterface"; both are kept so callers see the same outcome.
                IPAddress? fromInterface = outboundAddr is null ? null : environment.InterfaceAddress(outboundAddr, AddressFamily.InterNetworkV6);
                if (fromInterface is null)
                {
                    return ConfigFail("outbound-addr has to be valid ipv4 address or iterface name.");
                }

                parsed = fromInterface;
            }

            outbound6 = parsed;
        }

        byte[]? mac = null;
        if (macAddress is not null)
        {
            if (!TryParseMac(macAddress, out mac, out string? macError))
            {
                return ConfigFail(macError + "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').");
            }
        }

        uint mask = prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);
        var options = new SlirpOptions
        {
            Target = target,
            TargetPid = targetPid,
            NetnsPath = netnsPath,
            TapName = tapName,
            Configure = configure,
            ExitFd = exitFd,
            ReadyFd = readyFd,
            Mtu = mtu,
            EnableIpv6 = enableIpv6,
            ApiSocket = apiSocket,
            Cidr = FormatIpv4(network) + "/" + prefix,
            Network = ToAddress(network),
            PrefixLength = prefix,
            Netmask = ToAddress(mask),
            Gateway = ToAddress(network + SlirpDefaults.GatewayOffset),
            Dns = ToAddress(network + SlirpDefaults.DnsOffset),
            DhcpStart = ToAddress(network + SlirpDefaults.DhcpStartOffset),
            Guest = ToAddress(network + SlirpDefaults.GuestOffset),
            DisableHostLoopback = disableHostLoopback,
            NetnsType = resolvedNetnsType,
            UsernsPath = usernsPath,
            EnableSandbox = enableSandbox,
            EnableSeccomp = enableSeccomp,
            OutboundAddr = outbound,
            OutboundAddr6 = outbound6,
            DisableDns = disableDns,
            MacAddress = mac,
            TargetType = resolvedTargetType,
        };
        return new SlirpParseResult(SlirpParseOutcome.Run, options, stdout.ToString(), stderr.ToString(), 0);
    }

    /// <summary>
    /// slirp4netns parse_cidr: <c>^(([0-9]{1,3}\.){3}[0-9]{1,3})/([0-9]{1,2})$</c>, then inet_pton, then
    /// a prefix of 1-25, then no host bits set. Each failure has its own message.
    /// </summary>
    internal static bool TryParseCidr(string text, out uint network, out int prefix, out string error)
    {
        network = 0;
        prefix = 0;
        error = string.Empty;
        int slash = text.IndexOf('/');
        if (slash < 0 || !MatchesCidrShape(text, slash))
        {
            error = "invalid CIDR: " + text + "\n";
            return false;
        }

        string address = text[..slash];
        if (!CText.TryParseIpv4(address, out IPAddress parsed))
        {
            error = "invalid network address: " + address + "\n";
            return false;
        }

        prefix = int.Parse(text.AsSpan(slash + 1), System.Globalization.CultureInfo.InvariantCulture);
        if (prefix < SlirpDefaults.MinPrefixLength || prefix > SlirpDefaults.MaxPrefixLength)
        {
            error = "prefix length needs to be " + SlirpDefaults.MinPrefixLength + "-" + SlirpDefaults.MaxPrefixLength + "\n";
            return false;
        }

        Span<byte> bytes = stackalloc byte[4];
        parsed.TryWriteBytes(bytes, out _);
        network = ((uint)bytes[0] << 24) | ((uint)bytes[1] << 16) | ((uint)bytes[2] << 8) | bytes[3];
        uint mask = uint.MaxValue << (32 - prefix);
        if ((network & mask) != network)
        {
            error = "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24\n";
            return false;
        }

        return true;
    }

    private static bool MatchesCidrShape(string text, int slash)
    {
        int prefixLength = text.Length - slash - 1;
        if (prefixLength is < 1 or > 2 || !IsDigits(text.AsSpan(slash + 1)))
        {
            return false;
        }

        string[] parts = text[..slash].Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        foreach (string part in parts)
        {
            if (part.Length is < 1 or > 3 || !IsDigits(part))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDigits(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// slirp4netns's MAC reader: up to six ':'-separated groups, each read with sscanf("%x") and
    /// checked to be 0-255; fewer groups are accepted (the rest stays zero), more are "too long".
    /// </summary>
    internal static bool TryParseMac(string text, out byte[]? mac, out string error)
    {
        mac = null;
        error = string.Empty;
        var bytes = new byte[6];
        int count = 0;
        int position = 0;
        bool more = true;
        while (more && count < 6)
        {
            if (count > 0)
            {
                position++;
            }

            if (!CText.TryScanHex(text, position, out int octet) || octet < 0 || octet > 255)
            {
                error = "\"" + text + "\" is an invalid MAC address.\n";
                return false;
            }

            bytes[count++] = (byte)octet;
            int colon = text.IndexOf(':', position);
            more = colon >= 0;
            position = colon;
        }

        if (more)
        {
            error = "\"" + text + "\" is an invalid MAC address.  Is it too long?\n";
            return false;
        }

        mac = bytes;
        return true;
    }

    private static IPAddress ToAddress(uint value) =>
        new([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);

    private static string FormatIpv4(uint value) => ToAddress(value).ToString();
}
