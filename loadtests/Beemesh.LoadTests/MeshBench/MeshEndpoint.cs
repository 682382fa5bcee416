using System.Net;
using System.Net.Sockets;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>Resolves a literal address or a mesh name (through the guest's resolver) to an IPv4 endpoint.</summary>
public static class MeshEndpoint
{
    /// <summary>The first IPv4 address of <paramref name="host"/> with <paramref name="port"/>.</summary>
    public static async Task<IPEndPoint> ResolveAsync(string host, int port, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out IPAddress? literal))
        {
            return new IPEndPoint(literal, port);
        }

        IPAddress[] addresses = await Dns.GetHostAddressesAsync(host, AddressFamily.InterNetwork, cancellationToken).ConfigureAwait(false);
        return addresses.Length > 0
            ? new IPEndPoint(addresses[0], port)
            : throw new InvalidOperationException($"{host} has no IPv4 address");
    }
}
