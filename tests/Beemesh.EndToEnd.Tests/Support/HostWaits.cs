using System.Net;
using System.Net.Sockets;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>Small host-side helpers the end-to-end tests share: a free loopback port.</summary>
public static class HostWaits
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
