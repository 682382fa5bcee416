namespace Beemesh.Netstack.Link;

/// <summary>
/// Decorator that damages traffic on purpose, in both directions, from a seeded
/// <see cref="Random"/> so a failing run can be replayed: each frame is lost with
/// <see cref="LossRate"/>, else held back with <see cref="ReorderRate"/> (it then goes out right
/// after the next frame in the same direction), else duplicated with <see cref="DuplicationRate"/>.
/// </summary>
/// <remarks>
/// A held frame is never stranded: an inbound one is delivered when the inner link has nothing
/// more to read (the end of the stack's read batch), an outbound one at the latest on the
/// stack's next read of the link (its next loop iteration). So reordering happens inside bursts,
/// which is where TCP notices it. Lost written frames still report success, as a wire would.
/// Loop thread only, like the stack that drives it. Owns the inner link.
/// </remarks>
public sealed class FaultInjectingLink : ILinkDevice
{
    private readonly ILinkDevice _inner;
    private readonly Random _random;
    private readonly Queue<byte[]> _inboundReady = new();
    private byte[]? _heldInbound;
    private byte[]? _heldOutbound;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="seed"/> fixes every decision.</summary>
    public FaultInjectingLink(ILinkDevice inner, int seed)
    {
        _inner = inner;
        _random = new Random(seed);
    }

    /// <summary>Probability (0..1) that a frame is dropped. Default 0.</summary>
    public double LossRate { get; set; }

    /// <summary>Probability (0..1) that a frame is delivered twice. Default 0.</summary>
    public double DuplicationRate { get; set; }

    /// <summary>Probability (0..1) that a frame is held back behind the next one. Default 0.</summary>
    public double ReorderRate { get; set; }

    /// <summary>Frames dropped (both directions).</summary>
    public long FramesDropped { get; private set; }

    /// <summary>Frames delivered twice (both directions).</summary>
    public long FramesDuplicated { get; private set; }

    /// <summary>Frames held back and delivered late (both directions).</summary>
    public long FramesReordered { get; private set; }

    /// <inheritdoc />
    public int Fd => _inner.Fd;

    /// <inheritdoc />
    public bool VnetHeader => _inner.VnetHeader;

    /// <inheritdoc />
    public bool Offload => _inner.Offload;

    /// <inheritdoc />
    public int Read(Span<byte> buffer)
    {
        ReleaseHeldOutbound();
        while (true)
        {
            if (_inboundReady.TryDequeue(out var ready))
            {
                return CopyOut(ready, buffer);
            }

            int n = _inner.Read(buffer);
            if (n <= 0)
            {
                if (_heldInbound is { } held)
                {
                    _heldInbound = null;
                    return CopyOut(held, buffer);
                }

                return n;
            }

            switch (Decide())
            {
                case Fault.Drop:
                    continue;
                case Fault.Hold when _heldInbound is null:
                    _heldInbound = buffer[..n].ToArray();
                    FramesReordered++;
                    continue;
                case Fault.Duplicate:
                    _inboundReady.Enqueue(buffer[..n].ToArray());
                    break;
            }

            if (_heldInbound is { } late)
            {
                _heldInbound = null;
                _inboundReady.Enqueue(late);
            }

            return n;
        }
    }

    /// <inheritdoc />
    public bool Write(ReadOnlySpan<byte> frame)
    {
        bool ok = true;
        switch (Decide())
        {
            case Fault.Drop:
                return true;
            case Fault.Hold when _heldOutbound is null:
                _heldOutbound = frame.ToArray();
                FramesReordered++;
                return true;
            case Fault.Duplicate:
                ok = _inner.Write(frame);
                ok &= _inner.Write(frame);
                break;
            default:
                ok = _inner.Write(frame);
                break;
        }

        ReleaseHeldOutbound();
        return ok;
    }

    /// <summary>Sends a held outbound frame now (also happens on the next read or write).</summary>
    public void ReleaseHeldOutbound()
    {
        if (_heldOutbound is { } held)
        {
            _heldOutbound = null;
            _inner.Write(held);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();

    private static int CopyOut(byte[] frame, Span<byte> buffer)
    {
        int n = Math.Min(frame.Length, buffer.Length);
        frame.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    private Fault Decide()
    {
        // One draw per frame, so a replay with the same seed and traffic makes the same decisions;
        // the three rates are disjoint shares of that draw (their sum should stay at or below 1).
        double x = _random.NextDouble();
        if (x < LossRate)
        {
            FramesDropped++;
            return Fault.Drop;
        }

        x -= LossRate;
        if (x < ReorderRate)
        {
            return Fault.Hold;
        }

        x -= ReorderRate;
        if (x < DuplicationRate)
        {
            FramesDuplicated++;
            return Fault.Duplicate;
        }

        return Fault.None;
    }

    private enum Fault
    {
        None,
        Drop,
        Hold,
        Duplicate,
    }
}
