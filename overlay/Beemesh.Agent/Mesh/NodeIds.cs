using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// A node's overlay id: the first 8 bytes (big-endian) of the SHA-256 of its node SPIFFE ID
/// <c>spiffe://TD/node/N</c>. Derived from the name the root certified, so a peer's id is checked
/// against its node SVID and no node can take another's id.
/// </summary>
public static class NodeIds
{
    /// <summary>The id of node <paramref name="nodeName"/> of <paramref name="trustDomain"/>.</summary>
    public static ulong Of(string trustDomain, string nodeName)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"spiffe://{trustDomain}/node/{nodeName}"), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }
}
