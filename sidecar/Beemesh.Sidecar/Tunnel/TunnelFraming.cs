using System.Buffers;
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

    /// <summary>
    /// Writes <paramref name="chunk"/> as data frames (empty chunks are skipped: length 0 means
    /// FIN). Each frame goes out as ONE write of header and bytes, so it rides one HTTP/2 DATA
    /// frame rather than a 4-byte frame followed by the payload's.
    /// </summary>
    public static async ValueTask WriteChunkAsync(Stream stream, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        while (!chunk.IsEmpty)
        {
            int n = Math.Min(chunk.Length, MaxChunk);
            byte[] frame = ArrayPool<byte>.Shared.Rent(HeaderLength + n);
            try
            {
                chunk.Span[..n].CopyTo(frame.AsSpan(HeaderLength));
                await WriteFrameAsync(stream, frame.AsMemory(0, HeaderLength + n), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(frame);
            }

            chunk = chunk[n..];
        }
    }

    /// <summary>
    /// Writes one data frame whose bytes already sit at <paramref name="frame"/>[HeaderLength..]:
    /// the header is written into the first <see cref="HeaderLength"/> bytes, and the whole frame
    /// goes out in one write without a copy. The chunk must not be empty nor over <see cref="MaxChunk"/>.
    /// </summary>
    public static ValueTask WriteFrameAsync(Stream stream, Memory<byte> frame, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        int length = frame.Length - HeaderLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1, nameof(frame));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxChunk, nameof(frame));
        BinaryPrimitives.WriteInt32BigEndian(frame.Span, length);
        return stream.WriteAsync(frame, cancellationToken);
    }

    /// <summary>Writes the FIN frame.</summary>
    public static async ValueTask WriteFinAsync(Stream stream, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(new byte[HeaderLength], cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
