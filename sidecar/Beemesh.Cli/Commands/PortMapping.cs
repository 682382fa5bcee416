using System.Net;
using Beemesh.Netstack.Forwarding;

namespace Beemesh.Cli.Commands;

/// <summary>
/// A <c>-p</c> value of <c>beemesh run</c>: <c>[HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]</c>, as podman's
/// <c>-p</c> (the host address defaults to 0.0.0.0, an IPv6 host address is written in brackets).
/// </summary>
public sealed record PortMapping(ForwardProtocol Protocol, IPAddress HostAddress, int HostPort, int GuestPort)
{
    /// <summary>Parses a mapping; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string text, out PortMapping? mapping, out string? error)
    {
        mapping = null;
        error = null;
        var protocol = ForwardProtocol.Tcp;
        string rest = text;
        int slash = rest.LastIndexOf('/');
        if (slash >= 0)
        {
            string proto = rest[(slash + 1)..];
            if (proto == "udp")
            {
                protocol = ForwardProtocol.Udp;
            }
            else if (proto != "tcp")
            {
                error = $"invalid protocol '{proto}' in '{text}' (tcp or udp)";
                return false;
            }

            rest = rest[..slash];
        }

        var host = IPAddress.Any;
        int lastColon = rest.LastIndexOf(':');
        if (lastColon < 0)
        {
            error = $"invalid port mapping '{text}': expected [HOSTADDR:]HOSTPORT:GUESTPORT";
            return false;
        }

        string guestPart = rest[(lastColon + 1)..];
        string hostPart = rest[..lastColon];
        int addrColon = hostPart.LastIndexOf(':');
        if (addrColon >= 0)
        {
            string addr = hostPart[..addrColon].Trim('[', ']');
            if (!IPAddress.TryParse(addr, out host!))
            {
                error = $"invalid host address '{addr}' in '{text}'";
                return false;
            }

            hostPart = hostPart[(addrColon + 1)..];
        }

        if (!int.TryParse(hostPart, out int hostPort) || hostPort is < 1 or > 65535
            || !int.TryParse(guestPart, out int guestPort) || guestPort is < 1 or > 65535)
        {
            error = $"invalid port in '{text}': ports are 1-65535";
            return false;
        }

        mapping = new PortMapping(protocol, host, hostPort, guestPort);
        return true;
    }
}
