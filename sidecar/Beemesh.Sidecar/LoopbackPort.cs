using System.Net;
using System.Net.Sockets;

namespace Beemesh.Sidecar;

/// <summary>Free TCP ports on host loopback.</summary>
public static class LoopbackPort
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago (the caller binds it next).</summary>
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
