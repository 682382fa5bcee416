using System.Buffers.Binary;

namespace Beemesh.Sidecar.State.Replicas;

/// <summary>
/// The framing of every request and answer between replicas of a store (<see cref="ReplicaLink"/>):
/// a 32-bit little-endian length, a kind byte, then the body. What the kinds mean is the store's.
/// </summary>
internal static class ReplicaFrame
{
    /// <summary>Writes one frame.</summary>
    public static async Task WriteAsync(Stream stream, byte kind, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        byte[] header = new byte[5];
        BinaryPrimitives.WriteInt32LittleEndian(header, body.Length + 1);
        header[4] = kind;
        await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads one frame; null at a clean end of stream; <see cref="InvalidDataException"/> on a length
    /// of 0 or over <paramref name="maxBytes"/> (before anything of the body is read or allocated).
    /// </summary>
    public static async Task<(byte Kind, byte[] Body)?> ReadAsync(Stream stream, int maxBytes, CancellationToken cancellationToken)
    {
        byte[] header = new byte[4];
        int read = await stream.ReadAtLeastAsync(header, 4, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < 4)
        {
            throw new EndOfStreamException("the replica connection ended inside a frame header");
        }

        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length < 1 || length > maxBytes)
        {
            throw new InvalidDataException($"replica frame of {length} bytes (limit {maxBytes})");
        }

        byte[] frame = new byte[length];
        await stream.ReadExactlyAsync(frame, cancellationToken).ConfigureAwait(false);
        return (frame[0], frame[1..]);
    }
}
