using Beemesh.Netstack.Interop;

namespace Beemesh.Netstack.Link;

/// <summary>
/// A tap fd (opened non-blocking by <c>beemesh-nsenter</c>) as an <see cref="ILinkDevice"/>.
/// Owns the fd: disposing closes it. One read or write is one frame (the tap has no batching
/// syscall); batching happens in the stack, which drains reads until EAGAIN before it flushes.
/// </summary>
public sealed class TapLink : ILinkDevice
{
    private readonly TapHandle? _handle;
    private int _fd;

    /// <summary>Wraps <paramref name="fd"/>; the link now owns it.</summary>
    public TapLink(int fd, bool vnetHeader, bool offload)
    {
        _fd = fd;
        VnetHeader = vnetHeader;
        Offload = vnetHeader && offload;
    }

    /// <summary>Wraps a tap received from <c>beemesh-nsenter</c>; the link now owns the handle.</summary>
    public TapLink(TapHandle tap)
        : this(tap.FileDescriptor, tap.VnetHeader, tap.Offload)
    {
        _handle = tap;
    }

    /// <inheritdoc />
    public int Fd => _fd;

    /// <inheritdoc />
    public bool VnetHeader { get; }

    /// <inheritdoc />
    public bool Offload { get; }

    /// <summary>Frames the link failed to write (tap queue full or gone).</summary>
    public long WriteErrors { get; private set; }

    /// <inheritdoc />
    public unsafe int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Sys.read(_fd, p, buffer.Length);
                if (n >= 0)
                {
                    return n == 0 ? -1 : (int)n;
                }

                int errno = Sys.Errno;
                if (errno == Sys.EINTR)
                {
                    continue;
                }

                return errno == Sys.EAGAIN ? 0 : -1;
            }
        }
    }

    /// <inheritdoc />
    public unsafe bool Write(ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
        {
            while (true)
            {
                nint n = Sys.write(_fd, p, frame.Length);
                if (n == frame.Length)
                {
                    return true;
                }

                if (n < 0 && Sys.Errno == Sys.EINTR)
                {
                    continue;
                }

                WriteErrors++;
                return false;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (_handle is not null)
        {
            _handle.Dispose();
        }
        else if (fd >= 0)
        {
            Sys.close(fd);
        }
    }
}
