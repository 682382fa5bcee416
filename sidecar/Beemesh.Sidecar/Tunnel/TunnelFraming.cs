using System.Buffers.Binary;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Framing of the caller → server direction of a tunnel stream. HttpClient cannot end an
/// extended CONNECT request stream (send END_STREAM) without resetting it, so a caller's
/// half-close could not otherwise reach the server — and every flow whose caller closed first
/// would stay open, holding an HTTP/2 stream until the connection's stream limit stalled all new
/// flows. Each chunk is a 4-byte big-endian length and the bytes; a length of 0 is the FIN.
/// The server → caller direction is unframed: it ends with END_STREAM, which Kestrel can send.
/// </summary>
public static class TunnelFraming
{
    /// <summary>Length of a frame header.</summary>
    public const int HeaderLength = 4;

    /// <summary>Largest chunk a frame may carry; a larger length is a protocol violation.</summary>
    public const int MaxChunk = 1 << 20;

    /// <summary>Writes one data frame (empty chunks are skipped: length 0 means FIN).</summary>
    public static async ValueTask WriteChunkAsync(Stream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        while (!chunk.IsEmpty)
        {
            int n = Math.Min(chunk.Length, MaxChunk);
            byte[] header = new byte[HeaderLength];
            BinaryPrimitives.WriteInt32BigEndian(header, n);
            await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
            await stream.WriteAsync(chunk[..n], cancellationToken).ConfigureAwait(false);
            chunk = chunk[n..];
        }
    }

    /// <summary>Writes the FIN frame.</summary>
    public static async ValueTask WriteFinAsync(Stream stream, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(new byte[HeaderLength], cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
