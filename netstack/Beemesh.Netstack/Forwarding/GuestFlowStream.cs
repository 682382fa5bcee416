using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Beemesh.Netstack.Forwarding;

/// <summary>
/// One guest TCP connection as an in-process byte stream, with no host socket under it (the
/// sidecar's mesh path). Reads return the bytes the guest sent, in order, and 0 after its FIN;
/// writes queue bytes that the stack segments to the guest. Both directions are bounded: the
/// guest's advertised window is the read buffer's free space, and a write waits while the send
/// buffer is full, so a slow guest or a slow reader never makes either side buffer more than
/// <see cref="BufferCapacity"/> per direction. Safe for one reader and one writer at a time, on
/// any threads; the stack's loop is woken at most once per batch of changes.
/// </summary>
/// <remarks>
/// Half-close: <see cref="ShutdownWrite"/> sends the guest a FIN after the queued bytes, and
/// reading goes on. <see cref="Abort"/> resets the guest's connection. A reset from the guest (or
/// the stack dropping the flow) fails pending and later reads and writes with an
/// <see cref="IOException"/> whose inner exception is a <see cref="SocketException"/> with
/// <see cref="SocketError.ConnectionReset"/>. Disposing closes it as close(2) closes a socket
/// (see <see cref="Dispose(bool)"/>).
/// </remarks>
public sealed class GuestFlowStream : Stream
{
    /// <summary>Bytes each direction buffers at most.</summary>
    public const int BufferCapacity = 1 << 20;

    // The window offered to the guest stays this far below the read buffer's capacity: a TCP
    // right edge never moves left, and rounding the scaled window up may push it past the free
    // space by under one scale unit per ACK while the buffer is full. A byte refused inside the
    // window costs the guest (no SACK) a retransmission timeout, so the buffer keeps room for it.
    private const int WindowSlack = 256 << 10;
    private const int WindowCapacity = BufferCapacity - WindowSlack;

    private readonly object _lock = new();
    private readonly Action<GuestFlowStream> _kick;
    private readonly Waiter _reader;
    private readonly Waiter _writer;
    private byte[]? _rx;
    private int _rxOffset;
    private int _rxLength;
    private byte[]? _tx;
    private int _txOffset;
    private int _txLength;
    private bool _rxEnded;
    private bool _writeShut;
    private bool _aborted;
    private bool _closed;
    private IOException? _error;
    private int _kickPending;

    /// <param name="kick">Asks the stack's loop to look at this stream soon (called from any thread, at most once until <see cref="TakeKick"/>).</param>
    internal GuestFlowStream(Action<GuestFlowStream> kick)
    {
        _kick = kick;
        _reader = new Waiter(_lock);
        _writer = new Waiter(_lock);
    }

    /// <summary>The flow behind the stream (the stack's own bookkeeping).</summary>
    internal object? Owner { get; init; }

    /// <summary>
    /// When true, a read waiting for the guest's bytes completes on the thread that delivers them,
    /// which is the stack's loop: the reader's continuation (for a splice: framing and encrypting
    /// the bytes, and the send) runs there at once, with no hand-off to a pool thread. The reader
    /// must then never block. Default false (continuations run on the thread pool). Set it before
    /// the first read.
    /// </summary>
    public bool InlineReadCompletions
    {
        set
        {
            lock (_lock)
            {
                _reader.Inline = value;
            }
        }
    }

    /// <summary>Bytes received from the guest and not read yet.</summary>
    public int ReadableBytes
    {
        get
        {
            lock (_lock)
            {
                return _rxLength;
            }
        }
    }

    /// <summary>Bytes written and not yet acknowledged by the guest.</summary>
    public int QueuedBytes
    {
        get
        {
            lock (_lock)
            {
                return _txLength;
            }
        }
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
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            int read = -1;
            bool kick = false;
            ValueTask wait = default;
            lock (_lock)
            {
                if (_error is not null)
                {
                    throw Failed();
                }

                if (_rxLength > 0 && !buffer.IsEmpty)
                {
                    read = Math.Min(buffer.Length, _rxLength);
                    int freeBefore = WindowCapacity - _rxLength;
                    _rx.AsSpan(_rxOffset, read).CopyTo(buffer.Span);
                    _rxOffset += read;
                    _rxLength -= read;
                    if (_rxLength == 0)
                    {
                        ArrayPool<byte>.Shared.Return(_rx!);
                        _rx = null;
                        _rxOffset = 0;
                    }

                    // The window reopening past half the buffer is worth a window update (receiver
                    // SWS avoidance); smaller steps ride on the next ACK the flow sends anyway.
                    kick = freeBefore < WindowCapacity / 2 && WindowCapacity - _rxLength >= WindowCapacity / 2;
                }
                else if (_rxEnded || buffer.IsEmpty)
                {
                    return 0;
                }
                else
                {
                    wait = _reader.Arm(cancellationToken);
                }
            }

            if (read >= 0)
            {
                if (kick)
                {
                    RequestKick();
                }

                return read;
            }

            await wait.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            ValueTask wait = default;
            int n;
            lock (_lock)
            {
                if (_error is not null)
                {
                    throw Failed();
                }

                if (_writeShut)
                {
                    throw new InvalidOperationException("The stream's write side was shut down.");
                }

                n = Math.Min(buffer.Length, BufferCapacity - _txLength);
                if (n > 0)
                {
                    Append(ref _tx, ref _txOffset, ref _txLength, buffer.Span[..n]);
                    buffer = buffer[n..];
                }

                if (!buffer.IsEmpty)
                {
                    wait = _writer.Arm(cancellationToken);
                }
            }

            if (n > 0)
            {
                RequestKick();
            }

            if (!buffer.IsEmpty)
            {
                await wait.ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Nothing to do: written bytes are already the stack's (the loop was woken).</summary>
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Half-closes toward the guest: a FIN follows the bytes already written. Reading goes on.</summary>
    public void ShutdownWrite()
    {
        lock (_lock)
        {
            if (_writeShut || _aborted || _error is not null)
            {
                return;
            }

            _writeShut = true;
        }

        RequestKick();
    }

    /// <summary>Resets the guest's connection (an RST) and fails pending reads and writes.</summary>
    public void Abort()
    {
        bool readerWaits;
        lock (_lock)
        {
            if (_aborted || _error is not null)
            {
                return;
            }

            _aborted = true;
            _error = new IOException("The connection was aborted.", new SocketException((int)SocketError.ConnectionAborted));
            ReleaseBuffers();
            readerWaits = _reader.TryTake();
            _writer.Fail(_error);
        }

        if (readerWaits)
        {
            _reader.Release(_error);
        }

        RequestKick();
    }

    /// <summary>
    /// Closes the stream as close(2) closes a socket: with unread bytes from the guest it resets the
    /// connection; otherwise a FIN follows what was written, and bytes the guest sends after that
    /// reset it.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            bool abort;
            lock (_lock)
            {
                if (_error is not null || (_rxEnded && _writeShut))
                {
                    base.Dispose(disposing);
                    return;
                }

                abort = _rxLength > 0;
                _closed = !abort;
            }

            if (abort)
            {
                Abort();
            }
            else
            {
                ShutdownWrite();
            }
        }

        base.Dispose(disposing);
    }

    // ---- the stack's side (loop thread) ----

    /// <summary>Clears the pending kick; the loop calls it before looking at the stream.</summary>
    internal void TakeKick() => Volatile.Write(ref _kickPending, 0);

    /// <summary>True once <see cref="Abort"/> was called.</summary>
    internal bool AbortRequested
    {
        get
        {
            lock (_lock)
            {
                return _aborted;
            }
        }
    }

    /// <summary>True once <see cref="ShutdownWrite"/> was called.</summary>
    internal bool WriteShutRequested
    {
        get
        {
            lock (_lock)
            {
                return _writeShut;
            }
        }
    }

    /// <summary>Free space of the read buffer: the window the flow advertises.</summary>
    internal long ReceiveFree
    {
        get
        {
            lock (_lock)
            {
                return _error is not null || _rxEnded ? 0 : Math.Max(0, WindowCapacity - _rxLength);
            }
        }
    }

    /// <summary>In-order bytes from the guest; returns how many were taken.</summary>
    internal int Deliver(ReadOnlySpan<byte> data)
    {
        int n;
        lock (_lock)
        {
            if (_error is not null || _rxEnded)
            {
                return 0;
            }

            if (_closed && !data.IsEmpty)
            {
                // Nobody will read these: reset, as the kernel does for data to a closed socket.
                _aborted = true;
                _error = new IOException("The connection was aborted.", new SocketException((int)SocketError.ConnectionAborted));
                ReleaseBuffers();
                _writer.Fail(_error);
                return 0;
            }

            n = Math.Min(data.Length, BufferCapacity - _rxLength);
            if (n <= 0 || !_reader.TryTake())
            {
                if (n > 0)
                {
                    Append(ref _rx, ref _rxOffset, ref _rxLength, data[..n]);
                }

                return Math.Max(n, 0);
            }

            Append(ref _rx, ref _rxOffset, ref _rxLength, data[..n]);
        }

        // Outside the lock: with inline read completions the reader runs right here.
        _reader.Release(null);
        return n;
    }

    /// <summary>The guest's FIN arrived in order: reads return 0 once the buffer is drained.</summary>
    internal void EndReceive()
    {
        bool readerWaits;
        lock (_lock)
        {
            _rxEnded = true;
            readerWaits = _reader.TryTake();
        }

        if (readerWaits)
        {
            _reader.Release(null);
        }
    }

    /// <summary>The flow is gone without a clean end (a reset, or the stack dropped it).</summary>
    internal void Fail(string reason)
    {
        IOException error;
        bool readerWaits;
        lock (_lock)
        {
            if (_error is not null)
            {
                return;
            }

            _error = error = new IOException(reason, new SocketException((int)SocketError.ConnectionReset));
            ReleaseBuffers();
            readerWaits = _reader.TryTake();
            _writer.Fail(_error);
        }

        if (readerWaits)
        {
            _reader.Release(error);
        }
    }

    /// <summary>Queued bytes from the head (SND.UNA on), sent or not.</summary>
    internal long SendAvailable
    {
        get
        {
            lock (_lock)
            {
                return _txLength;
            }
        }
    }

    /// <summary>Copies queued bytes starting <paramref name="offset"/> after the head.</summary>
    internal int PeekSend(long offset, Span<byte> destination)
    {
        lock (_lock)
        {
            if (offset >= _txLength)
            {
                return 0;
            }

            int n = (int)Math.Min(destination.Length, _txLength - offset);
            _tx.AsSpan(_txOffset + (int)offset, n).CopyTo(destination);
            return n;
        }
    }

    /// <summary>Drops bytes the guest acknowledged; wakes a writer waiting for space.</summary>
    internal void DiscardSend(long count)
    {
        lock (_lock)
        {
            int n = (int)Math.Min(count, _txLength);
            _txOffset += n;
            _txLength -= n;
            if (_txLength == 0 && _tx is not null)
            {
                ArrayPool<byte>.Shared.Return(_tx);
                _tx = null;
                _txOffset = 0;
            }

            if (n > 0)
            {
                _writer.Complete();
            }
        }
    }

    private void RequestKick()
    {
        if (Interlocked.Exchange(ref _kickPending, 1) == 0)
        {
            _kick(this);
        }
    }

    private IOException Failed() => new(_error!.Message, _error.InnerException);

    private void ReleaseBuffers()
    {
        if (_rx is not null)
        {
            ArrayPool<byte>.Shared.Return(_rx);
            _rx = null;
        }

        if (_tx is not null)
        {
            ArrayPool<byte>.Shared.Return(_tx);
            _tx = null;
        }

        _rxOffset = _rxLength = _txOffset = _txLength = 0;
    }

    /// <summary>Appends to a pooled linear buffer, compacting or growing it (to at most the capacity, rounded by the pool).</summary>
    private static void Append(ref byte[]? buffer, ref int offset, ref int length, ReadOnlySpan<byte> data)
    {
        if (buffer is null || offset + length + data.Length > buffer.Length)
        {
            int needed = length + data.Length;
            byte[] target = buffer is not null && needed <= buffer.Length
                ? buffer
                : ArrayPool<byte>.Shared.Rent(Math.Max(needed, 16 * 1024));
            if (length > 0)
            {
                // Overlapping copy when compacting in place: Span.CopyTo handles it (memmove).
                buffer.AsSpan(offset, length).CopyTo(target);
            }

            if (buffer is not null && !ReferenceEquals(buffer, target))
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            buffer = target;
            offset = 0;
        }

        data.CopyTo(buffer.AsSpan(offset + length));
        length += data.Length;
    }

    /// <summary>
    /// One reader or writer waiting for the other side: a reusable completion (no allocation per
    /// wait), armed and completed under the stream's lock, continuations run off the caller's thread.
    /// </summary>
    private sealed class Waiter(object gate) : IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
        private bool _armed;
        private CancellationTokenRegistration _registration;

        public ValueTask Arm(CancellationToken cancellationToken)
        {
            _core.Reset();
            _armed = true;
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), this);
            }

            return new ValueTask(this, _core.Version);
        }

        /// <summary>
        /// Reads complete on the thread that completes them (the stack's loop, for new bytes)
        /// rather than on the thread pool. Set while no wait is armed.
        /// </summary>
        public bool Inline
        {
            set => _core.RunContinuationsAsynchronously = !value;
        }

        /// <summary>Under the lock: disarms a wait, if one is armed; true when the caller must then <see cref="Release"/> it.</summary>
        public bool TryTake()
        {
            if (!_armed)
            {
                return false;
            }

            _armed = false;
            _registration.Unregister(); // not Dispose: that would wait for a Cancel blocked on the lock
            return true;
        }

        /// <summary>Outside the lock: completes a wait taken with <see cref="TryTake"/>.</summary>
        public void Release(Exception? error)
        {
            if (error is null)
            {
                _core.SetResult(true);
            }
            else
            {
                _core.SetException(error);
            }
        }

        public void Complete()
        {
            if (_armed)
            {
                _armed = false;
                _registration.Unregister(); // not Dispose: that would wait for a Cancel blocked on the lock
                _core.SetResult(true);
            }
        }

        public void Fail(Exception error)
        {
            if (_armed)
            {
                _armed = false;
                _registration.Unregister(); // not Dispose: that would wait for a Cancel blocked on the lock
                _core.SetException(error);
            }
        }

        private void Cancel(CancellationToken token)
        {
            lock (gate)
            {
                if (_armed)
                {
                    _armed = false;
                    _core.SetException(new OperationCanceledException(token));
                }
            }
        }

        public void GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
