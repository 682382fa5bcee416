using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Stack;
using Beemesh.Netstack.Tcp;
using Beemesh.Netstack.Wire;
using Microsoft.Extensions.Logging;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// One guest TCP connection spliced onto one host socket. The guest side is a
/// <see cref="TcpConnection"/>; this class is its I/O shell: the host socket's receive queue is
/// the connection's send buffer (MSG_PEEK at SO_PEEK_OFF, dropped with MSG_TRUNC once the guest
/// ACKs), and the host socket's send buffer is its receive sink (bytes are ACKed to the guest
/// only after send() took them). Loop thread only.
/// </summary>
/// <remarks>
/// Lifetime: outbound flows start Connecting (host connect in flight, the guest's SYN held);
/// then a connection exists until it reports Closed or Reset, or the host socket fails.
/// The host fd is closed once both directions are done; the flow may linger in TIME-WAIT
/// without an fd. <see cref="Dispose"/> closes whatever is left.
/// </remarks>
internal sealed class TcpFlow : ITcpFlow, ITcpSendSource, ITcpReceiveSink, ITcpSegmentWriter
{
    private const uint SocketEvents = Sys.EPOLLIN | Sys.EPOLLOUT | Sys.EPOLLRDHUP | Sys.EPOLLET;

    // The advertised window mirrors the host socket's free space, but the kernel counts buffer
    // overhead, so send() may take less than the window promised. Bytes the guest sent inside
    // the window are then kept here rather than dropped (a drop is a hole the guest repairs only
    // by retransmission, and we keep no out-of-order queue). The short write arms EPOLLOUT,
    // which drains this; meanwhile the window shrinks by what waits here.
    private const int MaxPending = 4 << 20;

    // The window never promises more than the hold can still take. The kernel's free space alone
    // is no bound: a whole batch of guest segments is handled before EPOLLOUT drains the hold, so
    // sndbuf minus the queue (up to 4 MiB) plus the window already promised could overrun the
    // hold, and a byte refused inside the window costs the guest (no SACK) a go-back-N of the rest.
    // The slack covers the window scale's round-up (RFC 7323 §2.3), which may move the right edge
    // by less than one scale unit per ACK beyond what the hold promised.
    private const int HoldBudget = MaxPending - (256 << 10);

    // Offered on top of the kernel's free space: while nothing is held, the window stays open by
    // at least this much, so it can only close once a send() fell short. That short send is what
    // arms EPOLLOUT (the kernel wakes a writer only after refusing it); a window closed by the
    // estimate alone, with nothing held, would never be reopened when the host socket drains.
    private const int HoldReserve = 256 << 10;

    // A send queue longer than this asks the kernel for SO_SNDBUF again (see KernelFreeSpace).
    private const int SndbufRecheck = 32 << 10;

    private readonly NetworkStack _stack;
    private int _fd;
    private int _token = -1;
    private TcpConnection? _connection;
    private TcpSegmentInfo _syn;
    private bool _connecting;
    private bool _hostEof;
    private bool _hostWriteShut;
    private bool _hostFailed;
    private bool _dirty;
    private bool _disposed;
    private long _peekOffset;
    private ushort _peerMss = 536;
    private TimeSpan? _scheduled;
    private System.Net.IPEndPoint? _redirectedFrom;

    // The guest's segment had no PSH: its sender has more bytes right behind it. send() then
    // gets MSG_MORE so the host socket does not emit the segment's tail as a tiny packet (with
    // TCP_NODELAY a 65480-byte write on a 65483-byte-MSS loopback would go out as 65471 + 9).
    private bool _morePending;
    private byte[]? _pending;
    private int _pendingOffset;
    private int _pendingLength;
    private bool _shutdownAfterPending;

    // One call into the connection (a guest segment, the batch's flush, a timer) asks for the host
    // socket's free space up to three times (window checks, the ACK's window), each a getsockopt and
    // an ioctl, and for the bytes queued to read once per segment it builds and once more to find
    // nothing left, each an ioctl. While one call runs the kernel's answers are kept here: free
    // space lowered by what send() took, queued bytes by what was discarded. The kernel may drain
    // or receive meanwhile, so a kept value can only be too small, and either change raises an
    // epoll edge (EPOLLET) that brings a fresh call. Only the kernel's part of the free space is
    // kept: the hold's part is computed from _pendingLength on every ask.
    private bool _inCall;
    private long _kernelFree = -1;
    private long _available = -1;
    private int _sndbuf = -1;

    private TcpFlow(NetworkStack stack, FlowKey key, int fd, bool inbound)
    {
        _stack = stack;
        Key = key;
        _fd = fd;
        Inbound = inbound;
    }

    /// <summary>The flow as the guest sees it.</summary>
    public FlowKey Key { get; }

    /// <summary>Created by a port-forwarding listener (the host side connected first).</summary>
    public bool Inbound { get; }

    /// <summary>The guest-side state, or Closed before the connection exists.</summary>
    public TcpState State => _connection?.State ?? TcpState.Closed;

    /// <summary>True once the connection can no longer carry data (TIME-WAIT or closed).</summary>
    public bool IsFinished => _disposed || (_connection is { } c && (c.State == TcpState.TimeWait || c.State == TcpState.Closed));

    /// <summary>Starts the host connect for a guest SYN; null when the socket could not even be created.</summary>
    public static unsafe TcpFlow? Connect(NetworkStack stack, FlowKey key, UInt128 host, ushort port, in TcpSegmentInfo syn, System.Net.IPEndPoint? redirectedFrom = null)
    {
        int fd = stack.OpenHostSocket(host, Sys.SOCK_STREAM);
        if (fd < 0)
        {
            return null;
        }

        Sys.SetInt(fd, Sys.IPPROTO_TCP, Sys.TCP_NODELAY, 1);
        if (IpAddr.IsLoopback(host))
        {
            Sys.UnpacedCongestionControl(fd);
        }

        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        int len = IpAddr.WriteSockAddr(host, port, new Span<byte>(sa, IpAddr.SockAddrSize));
        if (Sys.connect(fd, sa, len) < 0 && Sys.Errno != Sys.EINPROGRESS)
        {
            Sys.close(fd);
            return null;
        }

        var flow = new TcpFlow(stack, key, fd, inbound: false) { _syn = syn, _connecting = true, _redirectedFrom = redirectedFrom };
        if (syn.Options.Mss != 0)
        {
            flow._peerMss = syn.Options.Mss;
        }

        if (!stack.Loop.TryAdd(fd, SocketEvents, flow, out flow._token))
        {
            Sys.close(fd);
            return null;
        }

        return flow;
    }

    /// <summary>Wraps an accepted host connection and sends the SYN into the guest.</summary>
    public static TcpFlow? Accept(NetworkStack stack, FlowKey key, int fd)
    {
        var flow = new TcpFlow(stack, key, fd, inbound: true);
        if (!stack.TryAddInbound(flow))
        {
            Sys.CloseWithReset(fd);
            return null;
        }

        try
        {
            Sys.SetInt(fd, Sys.IPPROTO_TCP, Sys.TCP_NODELAY, 1);
            Sys.UnpacedCongestionControl(fd); // accepted sockets of loopback clients or the sidecar; harmless elsewhere
            flow.EnablePeekOffset();
            flow._connection = new TcpConnection(stack.CreateTcpOptions(IpAddr.IsV4(key.GuestAddress)), flow, flow, stack.InitialSequenceNumber(key));
            flow._connection.Connect(stack.Now, flow);
            flow.AfterCall();
        }
        catch (Exception e) when (!EventLoop.IsFatal(e))
        {
            stack.ContainFault(flow, e); // the flow is in the table: reset and remove it like any other
            return null;
        }

        // Readiness is only watched once the guest accepted: until then host data just queues.
        return flow;
    }

    /// <summary>A segment from the guest for this flow.</summary>
    public void OnSegment(in TcpSegmentInfo segment, ReadOnlySpan<byte> payload)
    {
        if (_connecting)
        {
            if ((segment.Flags & TcpFlags.Rst) != 0)
            {
                _stack.ConnectFinished(this, ok: false);
                _connecting = false;
                _stack.RemoveTcpFlow(this);
            }

            return; // a retransmitted SYN while the host connect is in flight: nothing to say yet
        }

        if (_connection is null)
        {
            return;
        }

        if ((segment.Flags & TcpFlags.Syn) != 0 && segment.Options.Mss != 0)
        {
            _peerMss = segment.Options.Mss;
        }

        bool wasEstablished = _connection.State >= TcpState.Established;
        _morePending = (segment.Flags & (TcpFlags.Psh | TcpFlags.Fin)) == 0;
        BeginCall();
        try
        {
            _connection.OnSegment(segment, payload, _stack.Now, this);
        }
        finally
        {
            EndCall();
            _morePending = false;
        }

        if (!wasEstablished && Inbound && _connection.State >= TcpState.Established && _token < 0 && _fd >= 0)
        {
            _token = _stack.Loop.Add(_fd, SocketEvents, this);
        }

        AfterCall();
    }

    /// <inheritdoc />
    public void OnReady(uint events)
    {
        if (_disposed)
        {
            return;
        }

        if (_connecting)
        {
            FinishConnect();

            // The same edge may already carry the peer's EOF (a server that accepts and closes):
            // with EPOLLET it will not be reported again, so fall through and handle it now.
            if (_connection is null || _disposed)
            {
                return;
            }
        }

        if (_connection is null)
        {
            return;
        }

        if ((events & Sys.EPOLLERR) != 0)
        {
            HostFailed();
            return;
        }

        if ((events & Sys.EPOLLOUT) != 0 && _pendingLength > 0)
        {
            DrainPending();
        }

        if ((events & (Sys.EPOLLRDHUP | Sys.EPOLLHUP)) != 0 && !_hostEof)
        {
            _hostEof = true;
            _connection.Close();
        }

        MarkDirty();
    }

    /// <inheritdoc />
    public void OnTimer()
    {
        _scheduled = null;
        if (_connection is null || _disposed)
        {
            return;
        }

        var now = _stack.Now;
        if (_connection.NextDeadline is { } deadline && deadline <= now)
        {
            BeginCall();
            try
            {
                _connection.OnTimer(now, this);
            }
            finally
            {
                EndCall();
            }
        }

        AfterCall();
    }

    private void BeginCall()
    {
        _inCall = true;
        _kernelFree = -1;
        _available = -1;
    }

    private void EndCall()
    {
        _inCall = false;
        _kernelFree = -1;
        _available = -1;
    }

    /// <summary>End of a batch: let the connection send data, ACKs and window updates.</summary>
    public void Flush()
    {
        _dirty = false;
        if (_connection is null || _disposed)
        {
            return;
        }

        if (_hostFailed)
        {
            _connection.Abort(_stack.Now, this);
            _stack.RemoveTcpFlow(this);
            return;
        }

        BeginCall();
        try
        {
            _connection.Poll(_stack.Now, this);
        }
        finally
        {
            EndCall();
        }

        AfterCall();
    }

    private void MarkDirty()
    {
        if (!_dirty)
        {
            _dirty = true;
            _stack.MarkDirty(this);
        }
    }

    private void FinishConnect()
    {
        int error = Sys.GetInt(_fd, Sys.SOL_SOCKET, Sys.SO_ERROR);
        _connecting = false;
        if (error != 0)
        {
            _stack.ConnectFinished(this, ok: false);
            _stack.Logger.LogDebug("connect for {Flow} failed: errno {Errno}", Key, error);
            var syn = _syn;
            _connection = null;
            _stack.RemoveTcpFlow(this);
            _stack.SendReset(Key, syn);
            return;
        }

        _stack.ConnectFinished(this, ok: true);
        if (_redirectedFrom is not null && _stack.FlowRedirector is { } redirector && LocalEndPoint() is { } local)
        {
            redirector.Connected(_redirectedFrom, local);
        }

        EnablePeekOffset();
        _connection = new TcpConnection(_stack.CreateTcpOptions(IpAddr.IsV4(Key.GuestAddress)), this, this, _stack.InitialSequenceNumber(Key));
        _connection.AcceptSyn(_syn, _stack.Now, this);
        AfterCall();
    }

    private unsafe System.Net.IPEndPoint? LocalEndPoint()
    {
        byte* sa = stackalloc byte[IpAddr.SockAddrSize];
        int len = IpAddr.SockAddrSize;
        return Sys.getsockname(_fd, sa, &len) == 0 && IpAddr.ReadSockAddr(new ReadOnlySpan<byte>(sa, len), out var a, out ushort p)
            ? NetworkStack.ToEndPoint(a, p)
            : null;
    }

    private void EnablePeekOffset()
    {
        // SO_PEEK_OFF starts disabled (-1); at 0 every MSG_PEEK continues where the last ended.
        Sys.SetInt(_fd, Sys.SOL_SOCKET, Sys.SO_PEEK_OFF, 0);
        _peekOffset = 0;
    }

    private void HostFailed()
    {
        _hostFailed = true;
        MarkDirty();
    }

    /// <summary>Acts on what the connection reported and re-arms its timer.</summary>
    private void AfterCall()
    {
        var c = _connection!;
        var events = c.TakeEvents();
        if ((events & TcpEvents.Reset) != 0)
        {
            CloseHost(reset: true);
            _stack.RemoveTcpFlow(this);
            return;
        }

        if ((events & TcpEvents.PeerFinished) != 0 && !_hostWriteShut && _fd >= 0)
        {
            if (_pendingLength > 0)
            {
                _shutdownAfterPending = true;
            }
            else
            {
                _hostWriteShut = true;
                Sys.shutdown(_fd, Sys.SHUT_WR);
            }
        }

        if ((events & TcpEvents.Closed) != 0 || c.State == TcpState.Closed)
        {
            CloseHost(reset: false);
            _stack.RemoveTcpFlow(this);
            return;
        }

        if (c.State == TcpState.TimeWait)
        {
            CloseHost(reset: false);
        }

        if (c.NextDeadline is { } d && (_scheduled is null || d < _scheduled.Value))
        {
            _scheduled = d;
            _stack.Loop.Schedule(this, d);
        }
    }

    private void CloseHost(bool reset)
    {
        if (_fd < 0)
        {
            return;
        }

        if (_token >= 0)
        {
            _stack.Loop.Remove(_fd, _token);
            _token = -1;
        }

        if (reset)
        {
            Sys.CloseWithReset(_fd);
        }
        else
        {
            Sys.close(_fd);
        }

        _fd = -1;
    }

    // ---- ITcpSendSource: the host socket's receive queue ----

    /// <inheritdoc />
    public long Available
    {
        get
        {
            if (_fd < 0)
            {
                return 0;
            }

            if (_inCall && _available >= 0)
            {
                return _available;
            }

            long queued = Math.Max(0, Sys.IoctlInt(_fd, Sys.FIONREAD));
            if (_inCall)
            {
                _available = queued;
            }

            return queued;
        }
    }

    /// <inheritdoc />
    public unsafe int Peek(long offset, Span<byte> destination)
    {
        if (_fd < 0 || destination.IsEmpty)
        {
            return 0;
        }

        if (offset != _peekOffset)
        {
            Sys.SetInt(_fd, Sys.SOL_SOCKET, Sys.SO_PEEK_OFF, (int)offset);
            _peekOffset = offset;
        }

        fixed (byte* p = destination)
        {
            nint n = Sys.recv(_fd, p, destination.Length, Sys.MSG_PEEK | Sys.MSG_DONTWAIT);
            if (n <= 0)
            {
                return 0;
            }

            _peekOffset += n;
            return (int)n;
        }
    }

    /// <inheritdoc />
    public unsafe void Discard(long count)
    {
        while (count > 0 && _fd >= 0)
        {
            // MSG_TRUNC on a TCP socket drops the bytes without copying them (tcp(7)).
            nint n = Sys.recv(_fd, null, (nint)Math.Min(count, int.MaxValue), Sys.MSG_TRUNC | Sys.MSG_DONTWAIT);
            if (n <= 0)
            {
                break;
            }

            count -= n;
            _peekOffset = Math.Max(0, _peekOffset - n);
            if (_available >= 0)
            {
                _available = Math.Max(0, _available - n);
            }
        }
    }

    // ---- ITcpReceiveSink: the host socket's send buffer ----

    /// <inheritdoc />
    public long FreeSpace
    {
        get
        {
            if (_fd < 0 || _hostFailed)
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
        int queued = Math.Max(0, Sys.IoctlInt(_fd, Sys.TIOCOUTQ));
        if (_sndbuf < 0 || queued > Math.Min(_sndbuf / 2, SndbufRecheck))
        {
            _sndbuf = Sys.GetInt(_fd, Sys.SOL_SOCKET, Sys.SO_SNDBUF);
        }

        return Math.Max(0, _sndbuf - queued);
    }

    /// <inheritdoc />
    public int Write(ReadOnlySpan<byte> data) => WriteToHost(data);

    private unsafe int WriteToHost(ReadOnlySpan<byte> data)
    {
        if (_fd < 0 || _hostWriteShut || _hostFailed)
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
            n = Sys.send(_fd, p, data.Length, Sys.MSG_DONTWAIT | Sys.MSG_NOSIGNAL | (_morePending ? Sys.MSG_MORE : 0));
        }

        if (n < 0)
        {
            if (Sys.Errno != Sys.EAGAIN)
            {
                HostFailed();
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

    private unsafe void DrainPending()
    {
        nint n;
        fixed (byte* p = _pending)
        {
            n = Sys.send(_fd, p + _pendingOffset, _pendingLength, Sys.MSG_DONTWAIT | Sys.MSG_NOSIGNAL);
        }

        if (n < 0)
        {
            if (Sys.Errno != Sys.EAGAIN)
            {
                HostFailed();
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
            if (_shutdownAfterPending && !_hostWriteShut)
            {
                _hostWriteShut = true;
                Sys.shutdown(_fd, Sys.SHUT_WR);
            }
        }
    }

    // ---- ITcpSegmentWriter: build the frame, payload straight from the host socket ----

    /// <inheritdoc />
    public void Write(in TcpSegmentInfo segment, long sourceOffset) => _stack.WriteTcpSegment(Key, segment, this, sourceOffset, _peerMss);

    /// <summary>
    /// A call into this flow threw: the guest gets a RST (at the connection's own sequence number, or
    /// answering its SYN when no connection exists yet), the host socket is closed with a reset, and
    /// the flow leaves the table. If the connection cannot even build its RST, the guest's next
    /// segment meets no flow and is answered with one.
    /// </summary>
    public void Abandon()
    {
        if (_disposed)
        {
            return;
        }

        if (_connection is { } c)
        {
            try
            {
                c.Abort(_stack.Now, this);
            }
            catch (Exception e) when (!EventLoop.IsFatal(e))
            {
                // its state is what failed; see the summary
            }
        }
        else if (!Inbound)
        {
            _stack.SendReset(Key, _syn);
        }

        CloseHost(reset: true);
        _stack.RemoveTcpFlow(this);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        // A removed flow must leave nothing in the timer heap: a keepalive or TIME-WAIT deadline
        // still queued there would keep the flow and its connection reachable until it fired.
        _stack.Loop.Cancel(this);
        _scheduled = null;
        if (_pending is not null)
        {
            _stack.ReturnHoldBuffer(_pending);
            _pending = null;
            _pendingLength = 0;
        }

        if (_connecting)
        {
            _connecting = false;
            _stack.ConnectFinished(this, ok: false);
        }

        CloseHost(reset: _connection is { } c && c.State is not (TcpState.TimeWait or TcpState.Closed));
    }
}
