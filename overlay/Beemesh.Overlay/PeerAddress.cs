using System.Net;

namespace Beemesh.Overlay;

/// <summary>
/// A node of the overlay: its 64-bit node id and, when known, where it listens. Two addresses are
/// the same peer when their ids match; the endpoint is only a hint for opening a link.
/// </summary>
public readonly record struct PeerAddress(ulong Id, IPEndPoint? EndPoint = null)
{
    /// <summary>Identity is the node id alone.</summary>
    public bool Equals(PeerAddress other) => Id == other.Id;

    /// <inheritdoc />
    public override int GetHashCode() => Id.GetHashCode();

    /// <inheritdoc />
    public override string ToString() => EndPoint is null ? $"{Id:x16}" : $"{Id:x16}@{EndPoint}";
}
