using System.Runtime.InteropServices;

namespace Beemesh.Netstack.Interop;

/// <summary>
/// The libc calls the stack's event loop makes on raw file descriptors. The loop owns its
/// sockets as plain fds (not <see cref="System.Net.Sockets.Socket"/>) so that nothing on the
/// fast path allocates, and so that MSG_PEEK with SO_PEEK_OFF and MSG_TRUNC are available.
/// All functions set errno; read it with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe partial class Sys
{
    public const int EAGAIN = 11;
    public const int EINTR = 4;
    public const int EINPROGRESS = 115;
    public const int ECONNREFUSED = 111;
    public const int EADDRINUSE = 98;

    public const int AF_UNIX = 1;
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_STREAM = 1;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_RAW = 3;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int IPPROTO_IP = 0;
    public const int IPPROTO_ICMP = 1;
    public const int IPPROTO_TCP = 6;
    public const int IPPROTO_UDP = 17;
    public const int IPPROTO_IPV6 = 41;
    public const int IPPROTO_ICMPV6 = 58;

    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_ERROR = 4;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_KEEPALIVE = 9;
    public const int SO_LINGER = 13;
    public const int SO_PEEK_OFF = 42;
    public const int TCP_NODELAY = 1;
    public const int TCP_MAXSEG = 2;
    public const int IPV6_V6ONLY = 26;
    public const int IP_TRANSPARENT = 19;

    public const int MSG_PEEK = 0x2;
    public const int MSG_TRUNC = 0x20;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int MSG_MORE = 0x8000;

    public const int SHUT_RD = 0;
    public const int SHUT_WR = 1;
    public const int SHUT_RDWR = 2;

    public const uint FIONREAD = 0x541B;
    public const uint TIOCOUTQ = 0x5411;

    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 0x80000000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;
    public const int EPOLL_CLOEXEC = 0x80000;

    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    /// <summary>struct epoll_event is packed on x86_64 (12 bytes) but naturally aligned elsewhere (16 bytes).</summary>
    public static readonly bool PackedEpollEvent = RuntimeInformation.ProcessArchitecture == Architecture.X64;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    /// <summary>Registers, modifies or removes <paramref name="fd"/> with the given token (epoll data).</summary>
    public static int EpollCtl(int epfd, int op, int fd, uint events, ulong token)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        if (PackedEpollEvent)
        {
            *(ulong*)(ev + 4) = token;
        }
        else
        {
            *(ulong*)(ev + 8) = token;
        }

        return epoll_ctl(epfd, op, fd, ev);
    }

    /// <summary>Size of one struct epoll_event on this architecture.</summary>
    public static int EpollEventSize => PackedEpollEvent ? 12 : 16;

    /// <summary>Waits for events into a caller-owned buffer of <see cref="EpollEventSize"/>-byte entries.</summary>
    public static int EpollWait(int epfd, Span<byte> events, int timeoutMs)
    {
        fixed (byte* p = events)
        {
            return epoll_wait(epfd, p, events.Length / EpollEventSize, timeoutMs);
        }
    }

    /// <summary>Reads the events and token of entry <paramref name="index"/> of an epoll_wait buffer.</summary>
    public static void EpollEntry(ReadOnlySpan<byte> events, int index, out uint flags, out ulong token)
    {
        int size = EpollEventSize;
        var e = events.Slice(index * size, size);
        flags = MemoryMarshal.Read<uint>(e);
        token = MemoryMarshal.Read<ulong>(e.Slice(PackedEpollEvent ? 4 : 8));
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    public const int SIGTERM = 15;

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, byte* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int bind(int fd, byte* addr, int len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int connect(int fd, byte* addr, int len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int listen(int fd, int backlog);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int accept4(int fd, byte* addr, int* len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint send(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recvfrom(int fd, byte* buf, nint len, int flags, byte* addr, int* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendto(int fd, byte* buf, nint len, int flags, byte* addr, int addrlen);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, byte* value, int len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, byte* value, int* len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockname(int fd, byte* addr, int* len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, int* value);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    /// <summary>Sets an int socket option; returns 0 or -1.</summary>
    public static int SetInt(int fd, int level, int name, int value) => setsockopt(fd, level, name, (byte*)&value, sizeof(int));

    /// <summary>Reads an int socket option, or -1 on error.</summary>
    public static int GetInt(int fd, int level, int name)
    {
        int value = 0;
        int len = sizeof(int);
        return getsockopt(fd, level, name, (byte*)&value, &len) == 0 ? value : -1;
    }

    /// <summary>ioctl returning an int (FIONREAD, TIOCOUTQ), or -1 on error.</summary>
    public static int IoctlInt(int fd, uint request)
    {
        int value = 0;
        return ioctl(fd, request, &value) == 0 ? value : -1;
    }

    /// <summary>Closes with SO_LINGER {1, 0} so the peer receives a RST instead of a FIN.</summary>
    public static void CloseWithReset(int fd)
    {
        long linger = 1; // struct linger { int l_onoff = 1; int l_linger = 0; }
        setsockopt(fd, SOL_SOCKET, SO_LINGER, (byte*)&linger, 8);
        close(fd);
    }

    public const int TCP_CONGESTION = 13;

    /// <summary>
    /// Switches a loopback socket to CUBIC when the host default is a pacing algorithm such as
    /// BBR: the guest's own congestion control already governs the flow end to end, and pacing a
    /// zero-RTT loopback hop only throttles it (measured: 1.2–3 Gbit/s with BBR, 5.4–6.2 with
    /// CUBIC at MTU 65520). Failure (CUBIC not available) leaves the default in place.
    /// </summary>
    public static void UnpacedCongestionControl(int fd)
    {
        ReadOnlySpan<byte> cubic = "cubic"u8;
        fixed (byte* p = cubic)
        {
            setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, p, cubic.Length);
        }
    }

    /// <summary>The errno of the last call on this thread.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();
}
