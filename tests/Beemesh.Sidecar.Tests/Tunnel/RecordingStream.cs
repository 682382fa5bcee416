namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>Keeps every write as one record and counts flushes; reads are at end of stream at once.</summary>
internal sealed class RecordingStream : Stream
{
    public List<byte[]> Writes { get; } = [];

    public int Flushes { get; private set; }

    public byte[] All => [.. Writes.SelectMany(static w => w)];

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => Flushes++;

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        Flushes++;
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Writes.Add(buffer.ToArray());
        return ValueTask.CompletedTask;
    }

    public override void Write(byte[] buffer, int offset, int count) => Writes.Add(buffer.AsSpan(offset, count).ToArray());

    public override int Read(byte[] buffer, int offset, int count) => 0;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(0);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
