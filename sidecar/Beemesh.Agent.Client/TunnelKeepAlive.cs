using System.Net.Sockets;

namespace Beemesh.Agent.Client;

/// <summary>
/// How both ends of a mesh tunnel notice a peer that vanished without a FIN or RST (its machine
/// died, its network was cut, its process was stopped): the HTTP/2 keep-alive of the sidecars
/// (a PING after <see cref="DefaultInterval"/> without a frame, the connection closed when nothing
/// arrives within <see cref="DefaultTimeout"/> of it) and, on the TCP sockets under it, the
/// kernel's own bounds (<see cref="ConfigureSidecarSocket"/>, <see cref="ConfigureRelaySocket"/>).
/// </summary>
public static class TunnelKeepAlive
{
    /// <summary>Silence after which a tunnel connection is pinged (10 s).</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    /// <summary>Time a PING has to be answered, by its ACK or any frame, before the connection is closed (10 s).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Environment variable of a sidecar's keep-alive: <c>INTERVAL[,TIMEOUT]</c> in seconds (decimals
    /// allowed, e.g. <c>1,1</c> or <c>0.5</c>; the timeout defaults to the interval), or <c>off</c>.
    /// </summary>
    public const string Variable = "BEEMESH_TUNNEL_KEEPALIVE";

    // tcp(7): IPPROTO_TCP, TCP_USER_TIMEOUT (milliseconds). Not in SocketOptionName.
    private const int IpProtoTcp = 6;
    private const int TcpUserTimeout = 18;

    /// <summary>
    /// Parses <see cref="Variable"/>'s value: null or empty gives the defaults, <c>off</c> gives no
    /// keep-alive (Interval null). A bad value throws <see cref="FormatException"/> naming the variable.
    /// </summary>
    public static (TimeSpan? Interval, TimeSpan Timeout) Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return (DefaultInterval, DefaultTimeout);
        }

        if (string.Equals(value.Trim(), "off", StringComparison.OrdinalIgnoreCase))
        {
            return (null, DefaultTimeout);
        }

        string[] parts = value.Split(',');
        if (parts.Length > 2 || !TrySeconds(parts[0], out TimeSpan interval) || (parts.Length == 2 ? !TrySeconds(parts[1], out TimeSpan timeout) : !TrySeconds(parts[0], out timeout)))
        {
            throw new FormatException($"{Variable}={value}: expected INTERVAL[,TIMEOUT] in seconds between 0.1 and 3600 (e.g. 10,10), or off");
        }

        return (interval, timeout);
    }

    private static bool TrySeconds(string text, out TimeSpan value)
    {
        value = default;
        if (!double.TryParse(text.Trim(), System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out double seconds)
            || seconds is < 0.1 or > 3600)
        {
            return false;
        }

        value = TimeSpan.FromSeconds(seconds);
        return true;
    }

    /// <summary>
    /// A sidecar's tunnel socket: TCP_USER_TIMEOUT of <paramref name="interval"/> + <paramref name="timeout"/>,
    /// so bytes (a flow's, or the keep-alive PING itself) left unacknowledged that long make the kernel
    /// abort the connection instead of retransmitting for about 15 minutes; the socket, its buffers
    /// and an orphaned FIN go at the same bound as the HTTP/2 keep-alive. No SO_KEEPALIVE: the PING
    /// already probes an idle connection, and it also notices a stopped process, whose kernel still
    /// answers TCP probes. Does nothing off Linux or without a keep-alive.
    /// </summary>
    public static void ConfigureSidecarSocket(Socket socket, TimeSpan? interval, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (interval is { } i)
        {
            SetUserTimeout(socket, i + timeout);
        }
    }

    /// <summary>
    /// A socket of the node's tunnel port relay (which does not read the HTTP/2 inside the TLS):
    /// SO_KEEPALIVE after <see cref="DefaultInterval"/> idle, two probes 5 s apart, so a relayed
    /// connection whose caller's machine died or whose network was cut is closed within about 20 s
    /// even while idle; and TCP_USER_TIMEOUT of 20 s for bytes left unacknowledged (a caller that
    /// stopped reading). A stopped caller process is not noticed here (its kernel answers the
    /// probes): the sidecar's PING notices it and closes its end, and the relay then ends the other.
    /// </summary>
    public static void ConfigureRelaySocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, (int)DefaultInterval.TotalSeconds);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 5);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 2);
        }
        catch (SocketException)
        {
            // Not a TCP socket (a test's Unix socket pair): nothing to probe.
        }

        SetUserTimeout(socket, DefaultInterval + DefaultTimeout);
    }

    private static void SetUserTimeout(Socket socket, TimeSpan timeout)
    {
        if (!OperatingSystem.IsLinux() || socket.ProtocolType != ProtocolType.Tcp)
        {
            return;
        }

        try
        {
            socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeout, BitConverter.GetBytes((uint)Math.Min(timeout.TotalMilliseconds, uint.MaxValue)));
        }
        catch (SocketException)
        {
        }
    }
}
