using System.Buffers.Binary;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// The server's view of a tunnel stream: reads undo <see cref="TunnelFraming"/> (a FIN frame
/// reads as end of stream), writes pass through unframed. Owns nothing: the inner stream
/// belongs to the HTTP/2 request.
/// </summary>
internal sealed class FramedInboundStream(Stream inner) : Stream
{
    private readonly byte[] _header = new byte[TunnelFraming.HeaderLength];
    private int _remaining; // bytes left in the current frame
    private bool _finished;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_finished || buffer.IsEmpty)
        {
            return 0;
        }

        if (_remaining == 0)
        {
            if (!await ReadHeaderAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0;
            }
        }

        int n = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
        if (n == 0)
        {
            throw new IOException("the tunnel stream ended inside a frame");
        }

        _remaining -= n;
        return n;
    }

    private async ValueTask<bool> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        int got = 0;
        while (got < _header.Length)
        {
            int n = await inner.ReadAsync(_header.AsMemory(got), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (got == 0)
                {
                    _finished = true; // END_STREAM without a FIN frame: treat as the caller's FIN
                    return false;
                }

                throw new IOException("the tunnel stream ended inside a frame header");
            }

            got += n;
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(_header);
        if (length < 0 || length > TunnelFraming.MaxChunk)
        {
            throw new IOException($"bad tunnel frame length {length}");
        }

        if (length == 0)
        {
            _finished = true;
            return false;
        }

        _remaining = length;
        return true;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
