using System.Net;

namespace Beemesh.Sidecar.Inbound;

/// <summary>Opens the workload side of an authorized inbound tunnel stream.</summary>
public interface IGuestConnector
{
    /// <summary>
    /// Connects to <paramref name="guestPort"/> of the workload so that it sees the connection coming
    /// from <paramref name="callerMeshAddress"/>. The returned stream is owned by the caller. When it
    /// is a <see cref="System.Net.Sockets.NetworkStream"/> or a <see cref="Beemesh.Netstack.Forwarding.GuestFlowStream"/> the tunnel half-closes it with a FIN and
    /// aborts it with an RST.
    /// </summary>
    Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default);
}
