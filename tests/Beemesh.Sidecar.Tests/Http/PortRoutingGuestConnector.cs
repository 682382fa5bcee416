using System.Net;
using Beemesh.Sidecar.Inbound;

namespace Beemesh.Sidecar.Tests.Http;

/// <summary>Sends the given ports to the HTTP guest and every other port to the echo guest.</summary>
internal sealed class PortRoutingGuestConnector(IReadOnlySet<int> httpPorts, Func<IGuestConnector> http, IGuestConnector other) : IGuestConnector
{
    public Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default) =>
        (httpPorts.Contains(guestPort) ? http() : other).ConnectAsync(callerMeshAddress, guestPort, cancellationToken);
}
