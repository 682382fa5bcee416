using Beemesh.Netstack.Interop;
using Beemesh.Netstack.Tcp;

namespace Beemesh.Netstack.Nat;

/// <summary>
/// The host socket's receive queue as a connection's <see cref="ITcpSendSource"/>: bytes stay in
/// the kernel until the guest acknowledges them. <see cref="Peek"/> reads with MSG_PEEK at
/// SO_PEEK_OFF (moved only when the wanted offset is not where the last peek ended), and
/// <see cref="Discard"/> drops acknowledged bytes with MSG_TRUNC, without copying them.
/// Between <see cref="BeginCall"/> and <see cref="EndCall"/> (one call into the connection) the
/// queued byte count is asked of the kernel once and then kept, lowered by what was discarded:
/// bytes arriving meanwhile raise an epoll edge that brings a fresh call. Loop thread only.
/// </summary>
internal sealed class HostReceiveQueue : ITcpSendSource
{
    private readonly HostSocket _socket;
    private long _peekOffset;
    private bool _inCall;
    private long _available = -1;

    /// <summary>Reads from <paramref name="socket"/>; call <see cref="EnablePeekOffset"/> before the first peek.</summary>
    public HostReceiveQueue(HostSocket socket) => _socket = socket;

    /// <summary>Turns SO_PEEK_OFF on at 0: from now on every MSG_PEEK continues where the last ended.</summary>
    public void EnablePeekOffset()
    {
        // SO_PEEK_OFF starts disabled (-1).
        Sys.SetInt(_socket.Fd, Sys.SOL_SOCKET, Sys.SO_PEEK_OFF, 0);
        _peekOffset = 0;
    }

    /// <summary>A call into the connection starts: the queued count may be kept until <see cref="EndCall"/>.</summary>
    public void BeginCall()
    {
        _inCall = true;
        _available = -1;
    }

    /// <summary>The call ended: the next question goes to the kernel.</summary>
    public void EndCall()
    {
        _inCall = false;
        _available = -1;
    }

    /// <inheritdoc />
    public long Available
    {
        get
        {
            int fd = _socket.Fd;
            if (fd < 0)
            {
                return 0;
            }

            if (_inCall && _available >= 0)
            {
                return _available;
            }

            long queued = Math.Max(0, Sys.IoctlInt(fd, Sys.FIONREAD));
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
        int fd = _socket.Fd;
        if (fd < 0 || destination.IsEmpty)
        {
            return 0;
        }

        if (offset != _peekOffset)
        {
            Sys.SetInt(fd, Sys.SOL_SOCKET, Sys.SO_PEEK_OFF, (int)offset);
            _peekOffset = offset;
        }

        fixed (byte* p = destination)
        {
            nint n = Sys.recv(fd, p, destination.Length, Sys.MSG_PEEK | Sys.MSG_DONTWAIT);
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
        while (count > 0 && _socket.Fd >= 0)
        {
            // MSG_TRUNC on a TCP socket drops the bytes without copying them (tcp(7)).
            nint n = Sys.recv(_socket.Fd, null, (nint)Math.Min(count, int.MaxValue), Sys.MSG_TRUNC | Sys.MSG_DONTWAIT);
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
}
