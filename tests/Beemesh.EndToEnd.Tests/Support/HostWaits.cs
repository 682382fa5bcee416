using System.Net;
using System.Net.Sockets;

namespace Beemesh.EndToEnd.Tests.Support;

/// <summary>Small host-side helpers the end-to-end tests share: a free loopback port, waiting for a socket file.</summary>
public static class HostWaits
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits up to 10 s for <paramref name="path"/> to exist (a daemon's socket); returns whether it does.</summary>
    public static async Task<bool> WaitForFileAsync(string path)
    {
        for (int i = 0; i < 100 && !File.Exists(path); i++)
        {
            await Task.Delay(100);
        }

        return File.Exists(path);
    }
}
