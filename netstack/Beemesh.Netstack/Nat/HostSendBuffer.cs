using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// The host socket's send buffer as a connection's <see cref="ITcpReceiveSink"/>: guest bytes are
/// acknowledged once send() took them, and the advertised window is the budget computed here.
/// Bytes the guest sent inside the window but send() refused are held (the hold buffer), and go
/// out in order when the socket drains (<see cref="OnWritable"/>). Loop thread only.
/// </summary>
/// <remarks>
/// Ownership: the hold buffer is rented from the stack's pool when a send() falls short and goes
/// back as soon as it is empty, or in <see cref="Release"/>; no one else holds it.
/// </remarks>
internal sealed class HostSendBuffer : ITcpReceiveSink
{
    /// <summary>
    /// Most bytes held. The advertised window mirrors the host socket's free space, but the kernel
    /// counts buffer overhead, so send() may take less than the window promised. Bytes the guest
    /// sent inside the window are then kept here rather than dropped (a drop is a hole the guest
    /// repairs only by retransmission, and we keep no out-of-order queue). The short write arms
    /// EPOLLOUT, which drains this; meanwhile the window shrinks by what waits here.
    /// </summary>
    public const int MaxPending = 4 << 20;

    /// <summary>
    /// The window never promises more than the hold can still take. The kernel's free space alone
    /// is no bound: a whole batch of guest segments is handled before EPOLLOUT drains the hold, so
    /// sndbuf minus the queue (up to 4 MiB) plus the window already promised could overrun the
    /// hold, and a byte refused inside the window costs the guest (no SACK) a go-back-N of the rest.
    /// The slack covers the window scale's round-up (RFC 7323 §2.3), which may move the right edge
    /// by less than one scale unit per ACK beyond what the hold promised.
    /// </summary>
    public const int HoldBudget = MaxPending - (256 << 10);

    /// <summary>
    /// Offered on top of the kernel's free space: while nothing is held, the window stays open by
    /// at least this much, so it can only close once a send() fell short. That short send is what
    /// arms EPOLLOUT (the kernel wakes a writer only after refusing it); a window closed by the
    /// estimate alone, with nothing held, would never be reopened when the host socket drains.
    /// </summary>
    public const int HoldReserve = 256 << 10;

    // A send queue longer than this asks the kernel for SO_SNDBUF again (see KernelFreeSpace).
    private const int SndbufRecheck = 32 << 10;

    private readonly NetworkStack _stack;
    private readonly HostSocket _socket;
    private byte[]? _pending;
    private int _pendingOffset;
    private int _pendingLength;
    private bool _shutdownAfterPending;

    // One call into the connection (a guest segment, the batch's flush, a timer) asks for the free
    // space up to three times (window checks, the ACK's window), each a getsockopt and an ioctl.
    // While one call runs the kernel's answer is kept here, lowered by what send() took. The kernel
    // may drain meanwhile, so a kept value can only be too small, and a drain raises an epoll edge
    // (EPOLLET) that brings a fresh call. Only the kernel's part is kept: the hold's part is computed
    // from _pendingLength on every ask.
    private bool _inCall;
    private long _kernelFree = -1;
    private int _sndbuf = -1;

    /// <summary>Writes to <paramref name="socket"/>; hold buffers come from <paramref name="stack"/>'s pool.</summary>
    public HostSendBuffer(NetworkStack stack, HostSocket socket)
    {
        _stack = stack;
        _socket = socket;
    }

    /// <summary>
    /// The guest's segment being delivered had no PSH: its sender has more bytes right behind it.
    /// send() then gets MSG_MORE so the host socket does not emit the segment's tail as a tiny
    /// packet (with TCP_NODELAY a 65480-byte write on a 65483-byte-MSS loopback would go out as
    /// 65471 + 9). Set by the flow around one segment.
    /// </summary>
    public bool MoreFollows { get; set; }

    /// <summary>Bytes held, waiting for the host socket to drain.</summary>
    public int PendingLength => _pendingLength;

    /// <summary>A call into the connection starts: the kernel's free space may be kept until <see cref="EndCall"/>.</summary>
    public void BeginCall()
    {
        _inCall = true;
        _kernelFree = -1;
    }

    /// <summary>The call ended: the next question goes to the kernel.</summary>
    public void EndCall()
    {
        _inCall = false;
        _kernelFree = -1;
    }

    /// <inheritdoc />
    public long FreeSpace
    {
        get
        {
            if (!_socket.IsOpen || _socket.Failed)
            {
                return 0;
            }

            long kernelFree = _inCall && _kernelFree >= 0 ? _kernelFree : KernelFreeSpace();
            if (_inCall)
            {
                _kernelFree = kernelFree;
            }

            return Math.Max(0, Math.Min(kernelFree + HoldReserve, HoldBudget) - _pendingLength);
        }
    }

    // SO_SNDBUF is the kernel's budget including overhead, so this is an upper bound: the kernel
    // fills (and arms EPOLLOUT) before this reaches zero; see Hold for the excess. The kernel grows
    // SO_SNDBUF as the connection's window grows, so it is asked again whenever the queue holds more
    // than 32 KiB (or half of the last answer); while the queue stays that small (request/response
    // traffic) the window is the reserve's anyway and the last answer stands, which saves a
    // getsockopt on every segment and every flush.
    private long KernelFreeSpace()
    {
        int fd = _socket.Fd;
        int queued = Math.Max(0, Sys.IoctlInt(fd, Sys.TIOCOUTQ));
        if (_sndbuf < 0 || queued > Math.Min(_sndbuf / 2, SndbufRecheck))
        {
            _sndbuf = Sys.GetInt(fd, Sys.SOL_SOCKET, Sys.SO_SNDBUF);
        }

        return Math.Max(0, _sndbuf - queued);
    }

    /// <inheritdoc />
    public unsafe int Write(ReadOnlySpan<byte> data)
    {
        if (!_socket.IsOpen || _socket.WriteShut || _socket.Failed)
        {
            return 0;
        }

        if (_pendingLength > 0)
        {
            return Hold(data); // keep the byte order: nothing may overtake what already waits
        }

        nint n;
        fixed (byte* p = data)
        {
            n = Sys.send(_socket.Fd, p, data.Length, Sys.MSG_DONTWAIT | Sys.MSG_NOSIGNAL | (MoreFollows ? Sys.MSG_MORE : 0));
        }

        if (n < 0)
        {
            if (Sys.Errno != Sys.EAGAIN)
            {
                _socket.MarkFailed();
                return 0;
            }

            n = 0;
        }

        if (_kernelFree >= 0)
        {
            _kernelFree = Math.Max(0, _kernelFree - n);
        }

        return (int)n + Hold(data[(int)n..]);
    }

    /// <summary>The guest finished: shut the host socket's write side now, or once the hold drained.</summary>
    public void ShutdownWhenDrained()
    {
        if (_socket.WriteShut || !_socket.IsOpen)
        {
            return;
        }

        if (_pendingLength > 0)
        {
            _shutdownAfterPending = true;
        }
        else
        {
            _socket.ShutdownWrite();
        }
    }

    /// <summary>EPOLLOUT: sends what is held (in order), then the deferred shutdown if it was asked for.</summary>
    public unsafe void OnWritable()
    {
        if (_pendingLength == 0 || !_socket.IsOpen)
        {
            return;
        }

        nint n;
        fixed (byte* p = _pending)
        {
            n = Sys.send(_socket.Fd, p + _pendingOffset, _pendingLength, Sys.MSG_DONTWAIT | Sys.MSG_NOSIGNAL);
        }

        if (n < 0)
        {
            if (Sys.Errno != Sys.EAGAIN)
            {
                _socket.MarkFailed();
            }

            return;
        }

        _pendingOffset += (int)n;
        _pendingLength -= (int)n;
        if (_pendingLength == 0)
        {
            _stack.ReturnHoldBuffer(_pending!); // most flows never need it again
            _pending = null;
            _pendingOffset = 0;
            if (_shutdownAfterPending)
            {
                _socket.ShutdownWrite();
            }
        }
    }

    /// <summary>Gives the hold buffer back to the stack's pool (the flow is going away).</summary>
    public void Release()
    {
        if (_pending is not null)
        {
            _stack.ReturnHoldBuffer(_pending);
            _pending = null;
            _pendingLength = 0;
        }
    }

    /// <summary>Keeps bytes the host socket could not take yet; returns how many were kept.</summary>
    private int Hold(ReadOnlySpan<byte> data)
    {
        int take = Math.Min(data.Length, MaxPending - _pendingLength);
        if (take <= 0)
        {
            return 0;
        }

        if (_pending is null || _pendingOffset + _pendingLength + take > _pending.Length)
        {
            // Buffers come from the stack's pool and go back once drained: a flow only holds
            // bytes while its host socket is full. The stack drops the pool's arrays when it
            // trims after the transfer, so one busy transfer does not stay in the RSS.
            int needed = _pendingLength + take;
            var buffer = _pending is not null && needed <= _pending.Length
                ? _pending
                : _stack.RentHoldBuffer(Math.Max(needed, 64 * 1024));
            if (_pendingLength > 0)
            {
                _pending.AsSpan(_pendingOffset, _pendingLength).CopyTo(buffer);
            }

            if (_pending is not null && !ReferenceEquals(buffer, _pending))
            {
                _stack.ReturnHoldBuffer(_pending);
            }

            _pending = buffer;
            _pendingOffset = 0;
        }

        data[..take].CopyTo(_pending.AsSpan(_pendingOffset + _pendingLength));
        _pendingLength += take;
        return take;
    }
}
