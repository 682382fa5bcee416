using System.Collections.Concurrent;
using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Beemesh.Agent.Tunnel;

/// <summary>
/// Waits for sockets to become readable on an epoll set of its own, one thread for all of them.
/// The tunnel port waits for a ClientHello this way rather than with the runtime's socket engine:
/// a socket the runtime has waited on stays in the runtime's epoll set for as long as any process
/// holds it open, so after its descriptor is handed to a sidecar every segment of the connection
/// would still wake this process. Here the registration is removed before the wait returns.
/// </summary>
internal sealed partial class ReadinessWaiter : IDisposable
{
    private const uint EpollIn = 0x001;
    private const uint EpollErr = 0x008;
    private const uint EpollHup = 0x010;
    private const uint EpollRdHup = 0x2000;
    private const uint EpollOneShot = 1u << 30;
    private const int EpollCtlAdd = 1;
    private const int EpollCtlDel = 2;
    private const int EpollCloexec = 0x80000;
    private const int EfdCloexec = 0x80000;
    private const int Eintr = 4;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ConcurrentDictionary<ulong, Waiter> _waiters = new();
    private long _next;
    private volatile bool _stopping;

    public unsafe ReadinessWaiter()
    {
        _epoll = epoll_create1(EpollCloexec);
        if (_epoll < 0)
        {
            throw LastError("epoll_create1");
        }

        _wake = eventfd(0, EfdCloexec);
        if (_wake < 0)
        {
            IOException error = LastError("eventfd");
            _ = close(_epoll);
            throw error;
        }

        byte* wakeEvent = stackalloc byte[16];
        SetEvent(wakeEvent, EpollIn, 0);
        if (epoll_ctl(_epoll, EpollCtlAdd, _wake, wakeEvent) < 0)
        {
            IOException error = LastError("epoll_ctl");
            _ = close(_wake);
            _ = close(_epoll);
            throw error;
        }

        _thread = new Thread(Loop) { IsBackground = true, Name = "beemesh tunnel hello" };
        _thread.Start();
    }

    /// <summary>
    /// Completes when <paramref name="socket"/> is readable (or has an error or hang-up to read);
    /// cancelled by <paramref name="cancellationToken"/>. Either way the socket is out of the
    /// epoll set when the task ends. The socket must stay open until then.
    /// </summary>
    public async Task WaitReadableAsync(SafeHandle socket, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        int fd = (int)socket.DangerousGetHandle();
        ulong token = (ulong)Interlocked.Increment(ref _next);
        var waiter = new Waiter(fd);
        _waiters[token] = waiter;
        if (!Add(fd, token))
        {
            _waiters.TryRemove(token, out _);
            throw LastError("epoll_ctl");
        }

        try
        {
            using (cancellationToken.UnsafeRegister(static w => ((Waiter)w!).Ready.TrySetCanceled(), waiter))
            {
                await waiter.Ready.Task.ConfigureAwait(false);
            }
        }
        finally
        {
            _waiters.TryRemove(token, out _);
            // One-shot: fired or not, the entry stays until deleted, and must go before the descriptor does.
            Remove(fd);
        }
    }

    private unsafe bool Add(int fd, ulong token)
    {
        byte* ev = stackalloc byte[16];
        SetEvent(ev, EpollIn | EpollRdHup | EpollOneShot, token);
        return epoll_ctl(_epoll, EpollCtlAdd, fd, ev) == 0;
    }

    private unsafe void Remove(int fd) => _ = epoll_ctl(_epoll, EpollCtlDel, fd, null);

    private unsafe void Loop()
    {
        byte* events = stackalloc byte[64 * EventSize];
        while (!_stopping)
        {
            int count = epoll_wait(_epoll, events, 64, -1);
            if (count < 0)
            {
                if (Marshal.GetLastPInvokeError() == Eintr)
                {
                    continue;
                }

                break;
            }

            for (int i = 0; i < count; i++)
            {
                ulong token = *(ulong*)(events + (i * EventSize) + DataOffset);
                if (token != 0 && _waiters.TryGetValue(token, out Waiter? waiter))
                {
                    waiter.Ready.TrySetResult();
                }
            }
        }

        foreach (Waiter waiter in _waiters.Values)
        {
            waiter.Ready.TrySetCanceled();
        }
    }

    /// <summary>Stops the thread; waits in progress are cancelled.</summary>
    public unsafe void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        ulong one = 1;
        _ = write(_wake, &one, sizeof(ulong));
        _thread.Join();
        _ = close(_wake);
        _ = close(_epoll);
    }

    private static IOException LastError(string call)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call}: {Marshal.GetPInvokeErrorMessage(errno)}", new Win32Exception(errno));
    }

    private sealed class Waiter(int fd)
    {
        public int Fd => fd;

        public TaskCompletionSource Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    // struct epoll_event { uint32_t events; uint64_t data; }: packed on x86_64 (12 bytes), naturally aligned elsewhere (16 bytes).
    private static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private static unsafe void SetEvent(byte* ev, uint events, ulong data)
    {
        *(uint*)ev = events;
        *(ulong*)(ev + DataOffset) = data;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int epoll_ctl(int epoll, int operation, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int epoll_wait(int epoll, byte* events, int max, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initial, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    /// <summary>
    /// Copies up to <paramref name="buffer"/>'s length of what is queued on <paramref name="socket"/>
    /// without consuming it and without blocking: the count, 0 at end of stream, -1 when nothing is
    /// queued yet.
    /// </summary>
    /// <exception cref="IOException">recv failed.</exception>
    public static unsafe int Peek(SafeHandle socket, Span<byte> buffer)
    {
        const int MsgPeek = 0x2, MsgDontWait = 0x40, Eagain = 11;
        fixed (byte* data = buffer)
        {
            while (true)
            {
                nint read = recv((int)socket.DangerousGetHandle(), data, (nuint)buffer.Length, MsgPeek | MsgDontWait);
                if (read >= 0)
                {
                    return (int)read;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno == Eagain)
                {
                    return -1;
                }

                if (errno != Eintr)
                {
                    throw new IOException($"recv: {Marshal.GetPInvokeErrorMessage(errno)}", new Win32Exception(errno));
                }
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recv(int socket, byte* buffer, nuint length, int flags);
}
