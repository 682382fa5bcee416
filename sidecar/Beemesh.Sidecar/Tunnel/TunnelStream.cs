using Beemesh.Sidecar.Tunnel.Http2;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// One tunnelled flow as seen by the calling side: a CONNECT stream of the pooled connection to
/// the destination sidecar. Reads return the destination's bytes (0 once it half-closed); writes
/// are queued as DATA and leave with the connection's next batch (<see cref="FlushAsync"/> waits
/// for it). Disposing resets the stream (RST_STREAM) if it is still open and releases its pool
/// generation. Owned by whoever opened it.
/// </summary>
public sealed class TunnelStream : Stream
{
    private readonly Http2Stream _stream;
    private Action? _release;

    internal TunnelStream(Http2Stream stream, Action release)
    {
        _stream = stream;
        _release = release;
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
    /// Half-closes the upstream direction (END_STREAM), which the destination's sidecar turns into
    /// a FIN to its workload; reading goes on until the destination ends its side.
    /// </summary>
    public ValueTask ShutdownWriteAsync() => _stream.ShutdownWriteAsync();

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _stream.ReadAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _stream.ReadAsync(buffer, offset, count, cancellationToken);

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => _stream.Read(buffer, offset, count);

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _stream.WriteAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _stream.WriteAsync(buffer, offset, count, cancellationToken);

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => _stream.Write(buffer, offset, count);

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => _stream.FlushAsync(cancellationToken);

    /// <inheritdoc />
    public override void Flush() => _stream.Flush();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stream.Dispose();
            Interlocked.Exchange(ref _release, null)?.Invoke();
        }

        base.Dispose(disposing);
    }
}
