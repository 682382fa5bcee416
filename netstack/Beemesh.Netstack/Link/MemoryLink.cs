using System.Collections.Concurrent;

namespace Beemesh.Netstack.Link;

/// <summary>
/// An in-memory link endpoint with no fd: the test (or a debug harness) injects the frames the
/// stack will read and takes the frames the stack wrote. The stack drives it by polling
/// (<c>PumpOnce</c>), never through epoll. Frames are copied in and out, so callers may reuse
/// their buffers; both queues are safe to use from another thread than the stack's.
/// </summary>
public sealed class MemoryLink : ILinkDevice
{
    private readonly ConcurrentQueue<byte[]> _inbound = new();
    private readonly ConcurrentQueue<byte[]> _outbound = new();
    private volatile bool _closed;

    /// <summary>Creates a link whose frames carry a virtio_net_hdr when <paramref name="vnetHeader"/> is set.</summary>
    /// <param name="vnetHeader">Frames in both directions start with the 10-byte virtio_net_hdr.</param>
    /// <param name="offload">The link takes TCP super-segments (only meaningful with a vnet header, as on a tap).</param>
    public MemoryLink(bool vnetHeader = false, bool offload = false)
    {
        VnetHeader = vnetHeader;
        Offload = vnetHeader && offload;
    }

    /// <inheritdoc />
    public int Fd => -1;

    /// <inheritdoc />
    public bool VnetHeader { get; }

    /// <inheritdoc />
    public bool Offload { get; }

    /// <summary>Frames injected but not yet read by the stack.</summary>
    public int PendingInbound => _inbound.Count;

    /// <summary>Frames the stack wrote that nobody took yet.</summary>
    public int PendingOutbound => _outbound.Count;

    /// <summary>Frames the stack read that were longer than its buffer and were cut (as read(2) on a tap cuts them).</summary>
    public long TruncatedReads { get; private set; }

    /// <summary>
    /// Empty frames injected and discarded: a zero-length read means "nothing ready" in the
    /// <see cref="ILinkDevice"/> contract (a tap never yields one), so they cannot be delivered.
    /// </summary>
    public long EmptyFramesDiscarded { get; private set; }

    /// <summary>Queues a frame for the stack to read (a copy is taken).</summary>
    public void Inject(ReadOnlySpan<byte> frame) => _inbound.Enqueue(frame.ToArray());

    /// <summary>Takes the oldest frame the stack wrote; false when there is none.</summary>
    public bool TryTake(out byte[] frame) => _outbound.TryDequeue(out frame!);

    /// <summary>Takes every frame the stack wrote so far, oldest first.</summary>
    public List<byte[]> TakeAll()
    {
        var frames = new List<byte[]>();
        while (_outbound.TryDequeue(out var frame))
        {
            frames.Add(frame);
        }

        return frames;
    }

    /// <summary>Marks the link gone: reads return -1 once the inbound queue is drained, writes fail.</summary>
    public void Close() => _closed = true;

    /// <inheritdoc />
    public int Read(Span<byte> buffer)
    {
        byte[]? frame;
        do
        {
            if (!_inbound.TryDequeue(out frame))
            {
                return _closed ? -1 : 0;
            }

            if (frame.Length == 0)
            {
                EmptyFramesDiscarded++;
            }
        }
        while (frame.Length == 0);

        int n = Math.Min(frame.Length, buffer.Length);
        if (n < frame.Length)
        {
            TruncatedReads++;
        }

        frame.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    /// <inheritdoc />
    public bool Write(ReadOnlySpan<byte> frame)
    {
        if (_closed)
        {
            return false;
        }

        _outbound.Enqueue(frame.ToArray());
        return true;
    }

    /// <inheritdoc />
    public void Dispose() => _closed = true;
}
