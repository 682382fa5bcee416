using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Beemesh.Identity.Join;

/// <summary>
/// The joiner's proof that it holds a token's secret, bound to one TLS session and one request:
/// HMAC-SHA256 keyed with the token's verifier (<see cref="JoinToken.Verifier"/>) over the transcript
/// <c>"beemesh-join/1"</c>, token id, SHA-256 of the server's TLS certificate, SHA-256 of the root,
/// node name, and SHA-256 of each certificate signing request — each field length-prefixed, so no
/// two transcripts share bytes. A node that relays the proof to another server presents another
/// certificate, so the proof fails there; the secret itself never crosses the network.
/// </summary>
public static class JoinProof
{
    /// <summary>Builds the transcript the proof covers.</summary>
    public static byte[] Transcript(string tokenId, ReadOnlySpan<byte> serverCertificate, ReadOnlySpan<byte> root, string nodeName, ReadOnlySpan<byte> nodeCaRequest, ReadOnlySpan<byte> nodeSvidRequest)
    {
        using var buffer = new MemoryStream();
        Field(buffer, Encoding.ASCII.GetBytes(JoinProtocol.ApplicationProtocolName));
        Field(buffer, Encoding.ASCII.GetBytes(tokenId));
        Field(buffer, SHA256.HashData(serverCertificate));
        Field(buffer, SHA256.HashData(root));
        Field(buffer, Encoding.UTF8.GetBytes(nodeName));
        Field(buffer, SHA256.HashData(nodeCaRequest));
        Field(buffer, SHA256.HashData(nodeSvidRequest));
        return buffer.ToArray();
    }

    /// <summary>HMAC-SHA256(<paramref name="verifier"/>, <paramref name="transcript"/>).</summary>
    public static byte[] Compute(ReadOnlySpan<byte> verifier, ReadOnlySpan<byte> transcript) => HMACSHA256.HashData(verifier, transcript);

    /// <summary>Constant-time check of <paramref name="proof"/> against the expected HMAC.</summary>
    public static bool Verify(ReadOnlySpan<byte> verifier, ReadOnlySpan<byte> transcript, ReadOnlySpan<byte> proof)
    {
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(verifier, transcript, expected);
        // FixedTimeEquals returns false at once for a length mismatch, which reveals only the length.
        return CryptographicOperations.FixedTimeEquals(expected, proof);
    }

    private static void Field(MemoryStream buffer, ReadOnlySpan<byte> value)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, value.Length);
        buffer.Write(length);
        buffer.Write(value);
    }
}
