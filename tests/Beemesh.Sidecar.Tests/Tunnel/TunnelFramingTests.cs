using System.Buffers.Binary;
using Beemesh.Sidecar.Tunnel;

namespace Beemesh.Sidecar.Tests.Tunnel;

public sealed class TunnelFramingTests
{
    [Fact]
    public async Task WriteChunk_SendsHeaderAndBytesInOneWrite()
    {
        var sink = new RecordingStream();

        await TunnelFraming.WriteChunkAsync(sink, "hello"u8.ToArray(), CancellationToken.None);

        byte[] write = Assert.Single(sink.Writes);
        Assert.Equal(5, BinaryPrimitives.ReadInt32BigEndian(write));
        Assert.Equal("hello"u8.ToArray(), write[TunnelFraming.HeaderLength..]);
    }

    [Fact]
    public async Task WriteFrame_FillsTheReservedHeader_WithoutCopying()
    {
        var sink = new RecordingStream();
        byte[] frame = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];

        await TunnelFraming.WriteFrameAsync(sink, frame, CancellationToken.None);

        Assert.Equal(new byte[] { 0, 0, 0, 3, 1, 2, 3 }, Assert.Single(sink.Writes));
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(frame)); // written in place
    }

    [Fact]
    public async Task WriteFrame_WithoutPayload_IsRefused()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () =>
            await TunnelFraming.WriteFrameAsync(new RecordingStream(), new byte[TunnelFraming.HeaderLength], CancellationToken.None));
    }

    [Fact]
    public async Task Frames_ReadBackThroughTheServersView_UntilFin()
    {
        var sink = new RecordingStream();
        byte[] big = new byte[200_000];
        new Random(7).NextBytes(big);
        byte[] frame = new byte[TunnelFraming.HeaderLength + 3];
        "abc"u8.CopyTo(frame.AsSpan(TunnelFraming.HeaderLength));

        await TunnelFraming.WriteFrameAsync(sink, frame, CancellationToken.None);
        await TunnelFraming.WriteChunkAsync(sink, big, CancellationToken.None);
        await TunnelFraming.WriteFinAsync(sink, CancellationToken.None);
        await TunnelFraming.WriteChunkAsync(sink, "after fin"u8.ToArray(), CancellationToken.None);

        var inbound = new FramedInboundStream(new MemoryStream(sink.All));
        var read = new MemoryStream();
        await inbound.CopyToAsync(read);

        Assert.Equal([.. "abc"u8.ToArray(), .. big], read.ToArray());
    }
}
