using System.Net;
using System.Net.Sockets;

namespace Beemesh.Sidecar.Inbound;

/// <summary>
/// Inbound tunnel flows for a sidecar that shares its workload's network namespace (a pod):
/// the workload listens on localhost, so the flow is a plain loopback connection. The caller's
/// identity was checked and authorized by the tunnel; its mesh address cannot be presented here.
/// </summary>
public sealed class LocalGuestConnector : IGuestConnector
{
    /// <inheritdoc />
    public async Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, guestPort), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
