namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// One tunnelled flow as seen by the calling side: reads come from the CONNECT response body,
/// writes go out as request DATA frames on the same HTTP/2 stream. Disposing resets the stream
/// (RST_STREAM) if it is still open. Owned by whoever opened it.
/// Writes are framed (<see cref="TunnelFraming"/>): .NET's HttpClient cannot send END_STREAM on an
/// extended CONNECT stream without resetting it, so the caller's half-close travels as a FIN frame.
/// </summary>
public sealed class TunnelStream : Stream
{
    private readonly HttpResponseMessage _response;
    private readonly Stream _down;
    private readonly Stream _up;

    internal TunnelStream(HttpResponseMessage response, Stream duplex)
    {
        _response = response;
        _down = duplex;
        _up = duplex;
    }

    /// <inheritdoc />
    public override bool CanRead => true;

    /// <inheritdoc />
    public override bool CanWrite => true;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>
    /// Half-closes the upstream direction: sends the FIN frame, which the destination's sidecar
    /// turns into a FIN to its workload; reading goes on until the destination ends its side.
    /// </summary>
    public ValueTask ShutdownWriteAsync() => TunnelFraming.WriteFinAsync(_up, CancellationToken.None);

    /// <summary>
    /// Writes one frame whose payload already sits after <see cref="TunnelFraming.HeaderLength"/>
    /// reserved bytes at the start of <paramref name="frame"/> (see <see cref="TunnelFraming.WriteFrameAsync"/>):
    /// the splicer reads into its buffer past that room, so a chunk goes out without a copy.
    /// </summary>
    public ValueTask WriteFrameAsync(Memory<byte> frame, CancellationToken cancellationToken = default) => TunnelFraming.WriteFrameAsync(_up, frame, cancellationToken);

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _down.ReadAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _down.ReadAsync(buffer, offset, count, cancellationToken);

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => _down.Read(buffer, offset, count);

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => TunnelFraming.WriteChunkAsync(_up, buffer, cancellationToken);

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => TunnelFraming.WriteChunkAsync(_up, buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => TunnelFraming.WriteChunkAsync(_up, buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => _up.FlushAsync(cancellationToken);

    /// <inheritdoc />
    public override void Flush() => _up.Flush();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _down.Dispose();
            _response.Dispose();
        }

        base.Dispose(disposing);
    }
}
