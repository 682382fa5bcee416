using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// A tunnel connection's TCP socket as the stream under its TLS. The handshake runs on the
/// socket's asynchronous operations; <see cref="EnterDirectMode"/> then takes the socket out of
/// the runtime's event engine: reads block the connection's own reader thread in recv(2), which
/// the kernel wakes when bytes arrive (no hand-off from an engine thread to a pool thread), and
/// writes are sent by the writing thread itself with send(2) and MSG_DONTWAIT, so a write never
/// blocks the thread that made it. What the kernel does not take at once is kept and sent by a
/// drain thread that waits for the socket to be writable; the write's task completes when it has
/// all left. One read and one write may run at a time, as on any stream.
/// </summary>
public sealed partial class SocketTransport : Stream
{
    private const int EAGAIN = 11;
    private const int EINTR = 4;
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int F_GETFL = 3;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800;
    private const int SHUT_RDWR = 2;
    private const short POLLOUT = 0x4;

    private readonly Socket _socket;
    private readonly NetworkStream _network;
    private readonly Lock _lock = new();
    private int _fd = -1;
    private bool _direct;
    private int _disposed;

    // Output not yet taken by the kernel: sent by the drain thread, in order, before any later write.
    private byte[]? _overflow;
    private int _overflowOffset;
    private int _overflowLength;
    private TaskCompletionSource? _drained;
    private Thread? _drainThread;
    private readonly SemaphoreSlim _drainSignal = new(0);

    /// <summary>Wraps <paramref name="socket"/> (connected); the transport owns it.</summary>
    public SocketTransport(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        _network = new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>The socket under the stream.</summary>
    public Socket Socket => _socket;

    /// <summary>True once reads block the reading thread and writes are sent by the writing thread.</summary>
    public bool IsDirect => Volatile.Read(ref _direct);

    /// <summary>Writes the kernel could not take at once and the drain thread sent (a measure of back-pressure).</summary>
    public long DeferredWrites { get; private set; }

    /// <summary>
    /// Leaves the runtime's event engine: from now on reads and writes call the kernel directly
    /// (see the class remarks). Call once, after the handshake, with no read or write in flight.
    /// Returns false (and changes nothing) where that is not possible: not Linux.
    /// </summary>
    public bool EnterDirectMode()
    {
        if (!OperatingSystem.IsLinux() || _direct)
        {
            return _direct;
        }

        int fd = (int)_socket.SafeHandle.DangerousGetHandle();
        int flags = Fcntl(fd, F_GETFL, 0);
        if (flags < 0 || ((flags & O_NONBLOCK) != 0 && Fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0))
        {
            return false;
        }

        _fd = fd;
        Volatile.Write(ref _direct, true);
        return true;
    }

    /// <inheritdoc />
    public override bool CanRead => true;

    /// <inheritdoc />
    public override bool CanWrite => true;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        if (!_direct)
        {
            return _network.Read(buffer);
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        // The reference keeps the descriptor from being closed (and its number reused) under the call.
        bool added = false;
        _socket.SafeHandle.DangerousAddRef(ref added);
        try
        {
            return Receive(buffer);
        }
        finally
        {
            if (added)
            {
                _socket.SafeHandle.DangerousRelease();
            }
        }
    }

    private unsafe int Receive(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Recv(_fd, p, buffer.Length, 0);
                if (n >= 0)
                {
                    return (int)n;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }

                if (Volatile.Read(ref _disposed) != 0)
                {
                    throw new ObjectDisposedException(nameof(SocketTransport));
                }

                throw new IOException("the tunnel socket failed on receive", new SocketException(errno));
            }
        }
    }

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_direct)
        {
            return _network.ReadAsync(buffer, cancellationToken);
        }

        // A blocking read: only the connection's own reader thread reads a direct transport.
        return new ValueTask<int>(Read(buffer.Span));
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (!_direct)
        {
            _network.Write(buffer);
            return;
        }

        Task? wait = Send(buffer);
        wait?.GetAwaiter().GetResult();
    }

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_direct)
        {
            return _network.WriteAsync(buffer, cancellationToken);
        }

        Task? wait = Send(buffer.Span);
        return wait is null ? ValueTask.CompletedTask : new ValueTask(wait);
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Sends what the kernel takes now; keeps the rest for the drain thread and returns a task that
    /// completes when it has left (null when everything went at once).
    /// </summary>
    private Task? Send(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            int sent = _overflowLength == 0 ? SendNow(data) : 0;
            if (sent == data.Length)
            {
                return null;
            }

            ReadOnlySpan<byte> rest = data[sent..];
            if (_overflow is null || _overflow.Length - _overflowOffset - _overflowLength < rest.Length)
            {
                byte[] grown = new byte[Math.Max(_overflowLength + rest.Length, 64 * 1024)];
                _overflow?.AsSpan(_overflowOffset, _overflowLength).CopyTo(grown);
                _overflow = grown;
                _overflowOffset = 0;
            }

            rest.CopyTo(_overflow.AsSpan(_overflowOffset + _overflowLength));
            _overflowLength += rest.Length;
            DeferredWrites++;
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_drainThread is null)
            {
                _drainThread = new Thread(static s => ((SocketTransport)s!).DrainLoop(), 256 * 1024) { IsBackground = true, Name = "tunnel-drain" };
                _drainThread.UnsafeStart(this);
            }

            _drainSignal.Release();
            return _drained.Task;
        }
    }

    /// <summary>Sends without blocking; returns the bytes the kernel took. Throws on a failed socket.</summary>
    private int SendNow(ReadOnlySpan<byte> data)
    {
        bool added = false;
        _socket.SafeHandle.DangerousAddRef(ref added);
        try
        {
            return SendSome(data);
        }
        finally
        {
            if (added)
            {
                _socket.SafeHandle.DangerousRelease();
            }
        }
    }

    private unsafe int SendSome(ReadOnlySpan<byte> data)
    {
        int total = 0;
        fixed (byte* p = data)
        {
            while (total < data.Length)
            {
                nint n = SendTo(_fd, p + total, data.Length - total, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0)
                {
                    total += (int)n;
                    continue;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }

                if (errno == EAGAIN)
                {
                    break;
                }

                throw new IOException("the tunnel socket failed on send", new SocketException(errno));
            }
        }

        return total;
    }

    private unsafe void DrainLoop()
    {
        while (true)
        {
            _drainSignal.Wait();
            while (true)
            {
                TaskCompletionSource? done = null;
                Exception? failure = null;
                lock (_lock)
                {
                    if (_disposed != 0)
                    {
                        failure = new ObjectDisposedException(nameof(SocketTransport));
                    }
                    else if (_overflowLength == 0)
                    {
                        done = _drained;
                        _drained = null;
                    }
                    else
                    {
                        try
                        {
                            int n = SendNow(_overflow.AsSpan(_overflowOffset, _overflowLength));
                            _overflowOffset += n;
                            _overflowLength -= n;
                            if (_overflowLength == 0)
                            {
                                _overflowOffset = 0;
                                done = _drained;
                                _drained = null;
                            }
                        }
                        catch (Exception e) when (e is IOException or ObjectDisposedException)
                        {
                            failure = e;
                        }
                    }

                    if (failure is not null)
                    {
                        done = _drained;
                        _drained = null;
                        _overflowLength = 0;
                    }
                }

                if (failure is not null)
                {
                    done?.TrySetException(failure);
                    if (failure is ObjectDisposedException)
                    {
                        return;
                    }

                    break;
                }

                if (done is not null || _overflowLength == 0)
                {
                    done?.TrySetResult();
                    break;
                }

                // Wait until the kernel takes more (or the socket fails: poll reports that too).
                if (!WaitWritable())
                {
                    Thread.Sleep(1);
                }
            }
        }
    }

    /// <summary>
    /// Closes the socket. A reader blocked in recv(2) is woken first (shutdown), as closing the
    /// descriptor alone would leave it blocked.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            TaskCompletionSource? drained;
            lock (_lock)
            {
                drained = _drained;
                _drained = null;
                if (_direct)
                {
                    ShutdownWhileOpen();
                }
            }

            drained?.TrySetException(new ObjectDisposedException(nameof(SocketTransport)));
            if (_drainThread is not null)
            {
                _drainSignal.Release();
            }

            _network.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// Shuts both directions down, which wakes a reader blocked in recv(2). Only while the socket is
    /// open: once its descriptor is closed (the socket may be closed directly, not through this
    /// stream) the number may already belong to another socket of the process.
    /// </summary>
    private void ShutdownWhileOpen()
    {
        bool added = false;
        try
        {
            _socket.SafeHandle.DangerousAddRef(ref added);
            _ = Shutdown(_fd, SHUT_RDWR);
        }
        catch (ObjectDisposedException)
        {
            // Closed already: nothing is blocked on it any more.
        }
        finally
        {
            if (added)
            {
                _socket.SafeHandle.DangerousRelease();
            }
        }
    }

    /// <summary>Waits up to a second for the socket to take more; false on a failed wait. Only on an open socket (see <see cref="ShutdownWhileOpen"/>).</summary>
    private unsafe bool WaitWritable()
    {
        bool added = false;
        try
        {
            _socket.SafeHandle.DangerousAddRef(ref added);
            var poll = new PollFd { Fd = _fd, Events = POLLOUT };
            return Poll(&poll, 1, 1000) >= 0 || Marshal.GetLastPInvokeError() == EINTR;
        }
        catch (ObjectDisposedException)
        {
            // Closed under the drain: the next send reports it.
            return true;
        }
        finally
        {
            if (added)
            {
                _socket.SafeHandle.DangerousRelease();
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint Recv(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static unsafe partial nint SendTo(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    private static partial int Shutdown(int fd, int how);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, nuint nfds, int timeout);
}
