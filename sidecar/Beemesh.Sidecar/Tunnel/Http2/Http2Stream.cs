using System.Buffers;

namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>
/// One CONNECT stream of an <see cref="Http2Connection"/> as a duplex byte stream. Reads return
/// the peer's DATA and 0 once the peer half-closed (END_STREAM); writes queue DATA within the
/// flow-control windows and go out with the connection's next batch (<see cref="FlushAsync(CancellationToken)"/>
/// waits for that). <see cref="ShutdownWriteAsync"/> half-closes; <see cref="Reset(Http2ErrorCode)"/> and disposing
/// a stream not closed both ways send RST_STREAM. A reset by the peer or the end of the connection
/// fails pending and later reads and writes with an <see cref="IOException"/>.
/// </summary>
public sealed class Http2Stream : Stream
{
    private readonly Http2Connection _connection;
    private readonly Queue<Segment> _received = new();
    private readonly TaskCompletionSource _response = new();
    private readonly int _receiveWindowSize;
    private long _sendWindow;
    private int _receiveWindow;
    private int _receiveConsumed;
    private int _headOffset; // bytes of the first received segment already read
    private TaskCompletionSource? _readWaiter;
    private TaskCompletionSource? _windowWaiter;
    private CancellationTokenSource? _aborted;
    private bool _localClosed;
    private bool _remoteClosed;
    private bool _responded;
    private Exception? _failure;
    private int _disposed;

    internal Http2Stream(Http2Connection connection, int id, int sendWindow, int receiveWindow)
    {
        _connection = connection;
        Id = id;
        _sendWindow = sendWindow;
        _receiveWindow = receiveWindow;
        _receiveWindowSize = receiveWindow;
    }

    /// <summary>The stream identifier.</summary>
    public int Id { get; }

    /// <summary>The CONNECT request's <c>:authority</c> (server side), host:port.</summary>
    public string? Authority { get; init; }

    /// <summary>The response status (client side, once <see cref="Http2Connection.ConnectAsync"/> returned).</summary>
    public int Status { get; private set; }

    /// <summary>The connection the stream rides.</summary>
    public Http2Connection Connection => _connection;

    /// <summary>Cancelled when the stream is reset (either way) or its connection ends.</summary>
    public CancellationToken Aborted
    {
        get
        {
            lock (_connection.Gate)
            {
                _aborted ??= new CancellationTokenSource();
                if (_failure is not null)
                {
                    _aborted.Cancel();
                }

                return _aborted.Token;
            }
        }
    }

    internal Task ResponseTask => _response.Task;

    internal bool IsWaitingForWindow => _windowWaiter is not null;

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

    /// <summary>
    /// Server side: answers the CONNECT request. 200 opens the tunnel; any other status ends the
    /// stream (END_STREAM, then RST_STREAM NO_ERROR so the caller stops sending).
    /// </summary>
    public Task RespondAsync(int status)
    {
        bool tunnel = status is >= 200 and < 300;
        lock (_connection.Gate)
        {
            if (_connection.IsClient || _responded)
            {
                throw new InvalidOperationException("the stream was already answered");
            }

            _responded = true;
            if (_failure is not null)
            {
                return Task.FromException(new IOException("the stream was reset", _failure));
            }

            _connection.WriteResponseLocked(Id, status, endStream: !tunnel);
            if (!tunnel)
            {
                FrameWriter.RstStream(_connection.Output, Id, Http2ErrorCode.NoError);
                _localClosed = _remoteClosed = true;
                _failure = new IOException($"the stream was answered {status}");
                _connection.RemoveLocked(this);
            }
        }

        return _connection.FlushAsync();
    }

    /// <summary>Half-closes the sending direction (an empty DATA frame with END_STREAM).</summary>
    public async ValueTask ShutdownWriteAsync()
    {
        lock (_connection.Gate)
        {
            if (_localClosed || _failure is not null)
            {
                return;
            }

            _localClosed = true;
            FrameWriter.Data(_connection.Output, Id, [], endStream: true);
            RemoveIfClosedLocked();
        }

        await _connection.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Resets the stream (RST_STREAM with <paramref name="code"/>) unless it already ended.</summary>
    public void Reset(Http2ErrorCode code = Http2ErrorCode.Cancel) => Reset(code, null);

    /// <inheritdoc />
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            TaskCompletionSource waiter;
            int n = 0;
            lock (_connection.Gate)
            {
                if (_received.Count > 0)
                {
                    n = CopyOutLocked(buffer.Span);
                    CreditLocked(n);
                }
                else if (_remoteClosed)
                {
                    return 0;
                }
                else if (_failure is not null)
                {
                    throw Failure();
                }

                waiter = _readWaiter = n > 0 ? null! : new TaskCompletionSource();
            }

            if (n > 0)
            {
                _connection.StartFlush(); // a WINDOW_UPDATE may be queued
                return n;
            }

            await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc />
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            TaskCompletionSource? waiter = null;
            lock (_connection.Gate)
            {
                if (_failure is not null)
                {
                    throw Failure();
                }

                if (_localClosed)
                {
                    throw new IOException("the stream's sending side is closed");
                }

                int n = (int)Math.Min(Math.Min(buffer.Length, _sendWindow), _connection.PeerMaxFrameSize);
                n = n > 0 ? _connection.TakeConnectionWindow(n) : 0;
                if (n > 0)
                {
                    _sendWindow -= n;
                    FrameWriter.Data(_connection.Output, Id, buffer.Span[..n], endStream: false);
                    buffer = buffer[n..];
                }
                else
                {
                    waiter = _windowWaiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }

            if (waiter is not null)
            {
                // What is queued must leave for the peer to open its window again.
                _connection.StartFlush();
                await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        await _connection.FlushIfFullAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => _connection.FlushAsync().WaitAsync(cancellationToken);

    /// <inheritdoc />
    public override void Flush() => _connection.FlushAsync().GetAwaiter().GetResult();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // After our END_STREAM, a reset only tells the peer to stop sending (RFC 9113 section 8.1).
            bool sent;
            lock (_connection.Gate)
            {
                sent = _localClosed;
            }

            Reset(sent ? Http2ErrorCode.NoError : Http2ErrorCode.Cancel, null);
            lock (_connection.Gate)
            {
                // Bytes never read still hold the connection's window: give it back.
                int unread = 0;
                while (_received.TryDequeue(out Segment segment))
                {
                    unread += segment.Count - _headOffset;
                    _headOffset = 0;
                    ArrayPool<byte>.Shared.Return(segment.Array);
                }

                if (unread > 0 && _connection.ClosedBy is null)
                {
                    _connection.ConsumedLocked(unread);
                }

                _connection.RemoveLocked(this);
            }

            _connection.StartFlush();

            _aborted?.Dispose();
        }

        base.Dispose(disposing);
    }

    // ---- from the connection's read loop ----

    internal void OnData(ReadOnlySpan<byte> data, int padding, bool endStream)
    {
        TaskCompletionSource? reader;
        lock (_connection.Gate)
        {
            if (_failure is not null)
            {
                // Reset by us: frames still in flight are dropped and credited to the connection.
                _connection.ConsumedLocked(data.Length + padding);
                return;
            }

            if (_remoteClosed)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.StreamClosed, "DATA after END_STREAM");
            }

            if (_connection.IsClient && Status == 0)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, "DATA before the response HEADERS");
            }

            _receiveWindow -= data.Length + padding;
            if (_receiveWindow < 0)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.FlowControlError, "DATA beyond the stream's window");
            }

            // Padding is never read: credit it at once.
            _receiveConsumed += padding;
            _connection.ConsumedLocked(padding);
            if (!data.IsEmpty)
            {
                byte[] copy = ArrayPool<byte>.Shared.Rent(data.Length);
                data.CopyTo(copy);
                _received.Enqueue(new Segment(copy, data.Length));
            }

            if (endStream)
            {
                _remoteClosed = true;
                RemoveIfClosedLocked();
            }

            reader = _readWaiter;
            _readWaiter = null;
        }

        // The reader continues on this thread: the read loop hands the bytes over without a hop.
        reader?.TrySetResult();
    }

    internal void OnHeaders(List<HeaderField> fields, bool endStream)
    {
        bool respond = false;
        TaskCompletionSource? reader;
        lock (_connection.Gate)
        {
            if (_remoteClosed)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.StreamClosed, "HEADERS after END_STREAM");
            }

            if (_connection.IsClient && Status == 0)
            {
                string? status = fields.Find(static f => f.Name == ":status").Value;
                if (status is null || !int.TryParse(status, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int code) || code is < 100 or > 999)
                {
                    throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, "a response without a valid :status");
                }

                if (code < 200 && !endStream)
                {
                    return; // informational
                }

                Status = code;
                respond = true;
            }
            else if (!endStream)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, "trailers without END_STREAM");
            }

            if (endStream)
            {
                _remoteClosed = true;
                RemoveIfClosedLocked();
            }

            reader = _readWaiter;
            _readWaiter = null;
        }

        reader?.TrySetResult();
        if (respond)
        {
            _response.TrySetResult();
        }
    }

    internal void OnReset(Http2ErrorCode code) =>
        Fail(new Http2StreamException(Id, code, $"the peer reset the stream ({code})"), sendReset: null);

    internal void OnConnectionClosed(Exception reason) =>
        Fail(new IOException("the tunnel connection closed: " + reason.Message, reason), sendReset: null);

    internal void Reset(Http2ErrorCode code, Exception? cause) =>
        Fail(cause ?? new Http2StreamException(Id, code, $"the stream was reset ({code})"), sendReset: code);

    /// <summary>Under the lock: sets the send window (server streams learn the peer's current initial window).</summary>
    internal void SetSendWindowLocked(int window) => _sendWindow = window;

    /// <summary>Under the lock: adds <paramref name="delta"/> to the send window; false when it would pass 2^31-1.</summary>
    internal bool AdjustSendWindowLocked(int delta)
    {
        if (_sendWindow + delta > Http2Protocol.MaxWindowSize)
        {
            return false;
        }

        _sendWindow += delta;
        return true;
    }

    internal void WakeWriter()
    {
        TaskCompletionSource? waiter;
        lock (_connection.Gate)
        {
            waiter = _windowWaiter;
            _windowWaiter = null;
        }

        waiter?.TrySetResult();
    }

    private void Fail(Exception failure, Http2ErrorCode? sendReset)
    {
        TaskCompletionSource? reader;
        TaskCompletionSource? writer;
        CancellationTokenSource? aborted;
        lock (_connection.Gate)
        {
            if (_failure is not null || (_localClosed && _remoteClosed && _received.Count == 0))
            {
                return;
            }

            _failure = failure;
            if (sendReset is { } code && _connection.ClosedBy is null)
            {
                FrameWriter.RstStream(_connection.Output, Id, code);
            }

            _connection.RemoveLocked(this);
            reader = _readWaiter;
            writer = _windowWaiter;
            _readWaiter = _windowWaiter = null;
            aborted = _aborted;
        }

        if (sendReset is not null)
        {
            _connection.StartFlush();
        }

        reader?.TrySetResult();
        writer?.TrySetResult();
        _response.TrySetException(failure);
        try
        {
            aborted?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private Exception Failure() => _failure is IOException io ? new IOException(io.Message, io) : new IOException("the stream failed", _failure);

    private int CopyOutLocked(Span<byte> destination)
    {
        int copied = 0;
        while (copied < destination.Length && _received.TryPeek(out Segment segment))
        {
            int n = Math.Min(segment.Count - _headOffset, destination.Length - copied);
            segment.Array.AsSpan(_headOffset, n).CopyTo(destination[copied..]);
            copied += n;
            _headOffset += n;
            if (_headOffset == segment.Count)
            {
                _received.Dequeue();
                ArrayPool<byte>.Shared.Return(segment.Array);
                _headOffset = 0;
            }
        }

        return copied;
    }

    /// <summary>Under the lock: the reader consumed <paramref name="bytes"/>; reopen the windows by half.</summary>
    private void CreditLocked(int bytes)
    {
        _connection.ConsumedLocked(bytes);
        _receiveConsumed += bytes;
        if (_receiveConsumed >= _receiveWindowSize / 2 && !_remoteClosed && _failure is null)
        {
            FrameWriter.WindowUpdate(_connection.Output, Id, _receiveConsumed);
            _receiveWindow += _receiveConsumed;
            _receiveConsumed = 0;
        }
    }

    private void RemoveIfClosedLocked()
    {
        if (_localClosed && _remoteClosed)
        {
            _connection.RemoveLocked(this);
        }
    }

    private readonly record struct Segment(byte[] Array, int Count);
}
