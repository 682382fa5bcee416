using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using Beemesh.Netstack.Forwarding;
using Beemesh.Slirp.Cli;

namespace Beemesh.Slirp.Api;

/// <summary>
/// Turns one API request into the reply slirp4netns 1.2 would write, byte for byte
/// (compact JSON, no trailing newline). Sans-IO: the server feeds it bytes and writes what it returns.
/// </summary>
internal sealed class SlirpApiRequestHandler
{
    public const string TooLarge = "{\"error\":{\"desc\":\"bad request: too large message\"}}";

    /// <summary>
    /// Our own text, in slirp4netns's error shape, for a connection closed or refused because the
    /// caller, or all callers together, hold too many connections (slirp4netns has no such limit).
    /// </summary>
    public const string TooManyConnections = "{\"error\":{\"desc\":\"bad request: too many connections\"}}";
    public const string CannotParse = "{\"error\":{\"desc\":\"bad request: cannot parse JSON\"}}";
    public const string NotAnObject = "{\"error\":{\"desc\":\"bad request: json_object() failed\"}}";
    public const string NoExecute = "{\"error\":{\"desc\":\"bad request: no execute found\"}}";
    public const string UnknownExecute = "{\"error\":{\"desc\":\"bad request: unknown execute\"}}";
    public const string BadProto = "{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.proto\"}}";
    public const string BadHostAddr = "{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.host_addr\"}}";
    public const string BadHostPort = "{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.host_port\"}}";
    public const string BadGuestAddr = "{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.guest_addr\"}}";
    public const string BadGuestPort = "{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.guest_port\"}}";
    public const string AddFailed = "{\"error\":{\"desc\":\"bad request: add_hostfwd: slirp_add_hostfwd failed\"}}";
    public const string BadId = "{\"error\":{\"desc\":\"bad request: remove_hostfwd: bad arguments.id\"}}";
    public const string RemoveFailed = "{\"error\":{\"desc\":\"bad request: remove_hostfwd: slirp_remove_hostfwd failed\"}}";
    public const string RemoveOk = "{\"return\":{}}";

    private readonly IPortForwardTable _table;
    private readonly IPAddress _defaultGuest;
    private readonly bool _ipv6;

    /// <summary>Creates a handler over <paramref name="table"/>.</summary>
    /// <param name="table">Where rules are added, listed and removed.</param>
    /// <param name="defaultGuest">The guest address of a rule without guest_addr.</param>
    /// <param name="ipv6">
    /// With <c>-6</c>: host_addr and guest_addr may also be IPv6 addresses (a client of the other family
    /// reaches the guest from the gateway address). slirp4netns 1.2 refuses IPv6 in both fields even with
    /// <c>-6</c> ("bad arguments.host_addr" / "guest_addr"); without <c>-6</c> so do we, with its texts.
    /// </param>
    public SlirpApiRequestHandler(IPortForwardTable table, IPAddress defaultGuest, bool ipv6 = false)
    {
        _table = table;
        _defaultGuest = defaultGuest;
        _ipv6 = ipv6;
    }

    /// <summary>Handles a complete request; <paramref name="isError"/> tells whether the reply is an error.</summary>
    public string Handle(ReadOnlySpan<byte> request, out bool isError)
    {
        string reply = HandleCore(request);
        isError = reply.StartsWith("{\"error\"", StringComparison.Ordinal);
        return reply;
    }

    private string HandleCore(ReadOnlySpan<byte> request)
    {
        if (ParsonJsonParser.Parse(request, out ParsonJsonValue? root) != OperationStatus.Done)
        {
            return CannotParse;
        }

        if (root!.Kind != ParsonJsonKind.Object)
        {
            return NotAnObject;
        }

        string? execute = root.DotGetString("execute");
        return execute switch
        {
            null => NoExecute,
            "add_hostfwd" => AddHostForward(root),
            "list_hostfwd" => ListHostForwards(),
            "remove_hostfwd" => RemoveHostForward(root),
            _ => UnknownExecute,
        };
    }

    private string AddHostForward(ParsonJsonValue root)
    {
        // slirp4netns dereferences a missing proto and crashes; refusing it is the only sane equivalent.
        ForwardProtocol protocol;
        switch (root.DotGetString("arguments.proto"))
        {
            case "udp":
                protocol = ForwardProtocol.Udp;
                break;
            case "tcp":
                protocol = ForwardProtocol.Tcp;
                break;
            default:
                return BadProto;
        }

        string? hostText = root.DotGetString("arguments.host_addr");
        if (string.IsNullOrEmpty(hostText))
        {
            hostText = "0.0.0.0";
        }

        if (!TryParseAddress(hostText, out IPAddress hostAddress))
        {
            return BadHostAddr;
        }

        int hostPort = ToPort(root.DotGetNumber("arguments.host_port"));
        if (hostPort == 0)
        {
            return BadHostPort;
        }

        string? guestText = root.DotGetString("arguments.guest_addr");
        IPAddress guestAddress;
        if (string.IsNullOrEmpty(guestText))
        {
            guestAddress = _defaultGuest;
        }
        else if (!TryParseAddress(guestText, out guestAddress))
        {
            return BadGuestAddr;
        }

        int guestPort = ToPort(root.DotGetNumber("arguments.guest_port"));
        if (guestPort == 0)
        {
            return BadGuestPort;
        }

        PortForwardRule rule;
        try
        {
            rule = _table.Add(protocol, hostAddress, hostPort, guestAddress, guestPort);
        }
        catch (Exception ex) when (ex is PortForwardException or ArgumentException or InvalidOperationException)
        {
            return AddFailed;
        }

        return "{\"return\":{\"id\":" + rule.Id.ToString(CultureInfo.InvariantCulture) + "}}";
    }

    /// <summary>inet_pton(AF_INET) as slirp4netns parses; with IPv6 enabled, inet_pton(AF_INET6) too.</summary>
    private bool TryParseAddress(string text, out IPAddress address) =>
        CText.TryParseIpv4(text, out address) || (_ipv6 && CText.TryParseIpv6(text, out address));

    private string ListHostForwards()
    {
        var reply = new StringBuilder("{\"entries\":[");
        bool first = true;
        foreach (PortForwardRule rule in _table.List())
        {
            if (!first)
            {
                reply.Append(',');
            }

            first = false;
            reply.Append("{\"id\":").Append(rule.Id.ToString(CultureInfo.InvariantCulture))
                .Append(",\"proto\":\"").Append(rule.Protocol == ForwardProtocol.Udp ? "udp" : "tcp")
                .Append("\",\"host_addr\":\"").Append(rule.HostAddress.ToString())
                .Append("\",\"host_port\":").Append(rule.HostPort.ToString(CultureInfo.InvariantCulture))
                .Append(",\"guest_addr\":\"").Append(rule.GuestAddress.ToString())
                .Append("\",\"guest_port\":").Append(rule.GuestPort.ToString(CultureInfo.InvariantCulture))
                .Append('}');
        }

        return reply.Append("]}").ToString();
    }

    private string RemoveHostForward(ParsonJsonValue root)
    {
        double raw = root.DotGetNumber("arguments.id");
        if (!TryTruncate(raw, out int id))
        {
            return BadId;
        }

        try
        {
            return _table.Remove(id) ? RemoveOk : BadId;
        }
        catch (Exception ex) when (ex is PortForwardException or InvalidOperationException)
        {
            return RemoveFailed;
        }
    }

    /// <summary>
    /// C's (int) cast of the JSON number (toward zero). slirp4netns only rejects 0 and lets the
    /// port wrap to 16 bits; a port outside 1-65535 is refused here with the same message instead.
    /// </summary>
    private static int ToPort(double value) =>
        TryTruncate(value, out int port) && port is > 0 and <= 65535 ? port : 0;

    private static bool TryTruncate(double value, out int result)
    {
        result = 0;
        if (double.IsNaN(value) || value <= int.MinValue - 1.0 || value >= int.MaxValue + 1.0)
        {
            return false;
        }

        result = (int)Math.Truncate(value);
        return true;
    }
}
