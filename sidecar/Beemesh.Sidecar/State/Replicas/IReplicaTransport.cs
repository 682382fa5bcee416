using System.Net;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// Sends one request to a peer replica and returns its answer; null when the peer could not be
/// reached, hung up or answered with a frame that was refused. <see cref="ReplicaLink"/> is the
/// mutual-TLS implementation; tests put a fault-injecting one in its place.
/// </summary>
public interface IReplicaTransport
{
    /// <summary>One request/answer exchange with <paramref name="peer"/>.</summary>
    Task<(byte Kind, byte[] Body)?> TrySendAsync(IPEndPoint peer, byte kind, ReadOnlyMemory<byte> body, CancellationToken cancellationToken);
}
