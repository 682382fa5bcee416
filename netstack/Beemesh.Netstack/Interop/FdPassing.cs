using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using static Beemesh.Interop.UnixRights;

namespace Beemesh.Netstack.Interop;

/// <summary>
/// Receives a file descriptor passed over a unix stream socket (SCM_RIGHTS, see unix(7)) together
/// with a short text, and the few fd calls the tap code needs (close, O_NONBLOCK).
/// </summary>
internal static unsafe partial class FdPassing
{
    private const string LibC = "libc";
    private const int FGetFl = 3;
    private const int FSetFl = 4;
    private const int ONonBlock = 0x800;        // O_NONBLOCK on x86_64 and arm64

    /// <summary>Room for this many machine words of control data: enough for eight fds.</summary>
    private const int ControlWords = 16;

    /// <summary>
    /// Reads from <paramref name="socket"/> until a newline, end of stream or a full
    /// <paramref name="text"/> buffer, and returns the first descriptor that arrived in SCM_RIGHTS
    /// (opened close-on-exec), or -1 when none did. Extra descriptors are closed.
    /// </summary>
    /// <param name="socket">A connected unix stream socket; blocking or non-blocking.</param>
    /// <param name="text">Receives the bytes of the text that came with the descriptor.</param>
    /// <param name="textLength">How many bytes of <paramref name="text"/> were filled.</param>
    /// <param name="timeoutMilliseconds">Longest total wait; -1 waits forever.</param>
    /// <exception cref="TimeoutException">Nothing complete arrived in time.</exception>
    /// <exception cref="IOException">recvmsg or poll failed.</exception>
    public static int ReceiveFd(SafeHandle socket, Span<byte> text, out int textLength, int timeoutMilliseconds = -1)
    {
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            return ReceiveFd((int)socket.DangerousGetHandle(), text, out textLength, timeoutMilliseconds);
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    /// <inheritdoc cref="ReceiveFd(SafeHandle, Span{byte}, out int, int)"/>
    public static int ReceiveFd(int socket, Span<byte> text, out int textLength, int timeoutMilliseconds = -1)
    {
        long start = Stopwatch.GetTimestamp();
        int fd = -1;
        textLength = 0;
        try
        {
            while (textLength < text.Length)
            {
                int received = ReceiveOnce(socket, text[textLength..], ref fd);
                if (received == -Eagain)
                {
                    WaitReadable(socket, Remaining(start, timeoutMilliseconds));
                    continue;
                }
                if (received == 0)
                {
                    break; // end of stream
                }
                int before = textLength;
                textLength += received;
                if (text[before..textLength].IndexOf((byte)'\n') >= 0)
                {
                    break;
                }
            }
            return fd;
        }
        catch
        {
            if (fd >= 0)
            {
                close(fd);
            }
            throw;
        }
    }

    /// <summary>One recvmsg call. Returns the byte count, 0 at end of stream, or -EAGAIN.</summary>
    private static int ReceiveOnce(int socket, Span<byte> text, ref int fd)
    {
        // A nuint array gives the control buffer the cmsghdr alignment the kernel expects.
        nuint* control = stackalloc nuint[ControlWords];
        fixed (byte* data = text)
        {
            while (true)
            {
                var vector = new IoVector { Base = data, Length = (nuint)text.Length };
                var message = new MessageHeader
                {
                    Iov = &vector,
                    IovLength = 1,
                    Control = control,
                    ControlLength = (nuint)(ControlWords * sizeof(nuint)),
                };
                nint result = recvmsg(socket, &message, MsgCmsgCloexec);
                if (result < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Eintr)
                    {
                        continue;
                    }
                    if (errno == Eagain)
                    {
                        return -Eagain;
                    }
                    throw new IOException($"recvmsg: {Marshal.GetPInvokeErrorMessage(errno)}", new Win32Exception(errno));
                }
                TakeDescriptors(&message, ref fd);
                if ((message.Flags & MsgCtrunc) != 0 && fd < 0)
                {
                    throw new IOException("recvmsg: the passed file descriptor was truncated away (MSG_CTRUNC)");
                }
                return (int)result;
            }
        }
    }

    private static int Remaining(long start, int timeoutMilliseconds)
    {
        if (timeoutMilliseconds < 0)
        {
            return -1;
        }
        long left = timeoutMilliseconds - (long)Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (left <= 0)
        {
            throw new TimeoutException("timed out waiting for the file descriptor");
        }
        return (int)left;
    }

    private static void WaitReadable(int fd, int timeoutMilliseconds)
    {
        var entry = new PollEntry { Fd = fd, Events = PollIn };
        int ready;
        do
        {
            ready = poll(&entry, 1, timeoutMilliseconds);
        }
        while (ready < 0 && Marshal.GetLastPInvokeError() == Eintr);
        if (ready < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"poll: {Marshal.GetPInvokeErrorMessage(errno)}", new Win32Exception(errno));
        }
        if (ready == 0)
        {
            throw new TimeoutException("timed out waiting for the file descriptor");
        }
    }

    /// <summary>Sets O_NONBLOCK on <paramref name="fd"/>, keeping its other status flags.</summary>
    /// <exception cref="IOException">fcntl failed.</exception>
    public static void SetNonBlocking(int fd)
    {
        int flags = fcntl(fd, FGetFl, 0);
        if (flags < 0 || fcntl(fd, FSetFl, flags | ONonBlock) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"fcntl(O_NONBLOCK): {Marshal.GetPInvokeErrorMessage(errno)}", new Win32Exception(errno));
        }
    }

    /// <summary>Closes <paramref name="fd"/>; true on success.</summary>
    public static bool Close(int fd) => close(fd) == 0;

    // fcntl is variadic; passing the int argument as a fixed one matches the Linux x86_64 and arm64 calling conventions.
    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}
