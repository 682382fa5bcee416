using System.Buffers;

namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>
/// One HTTP/2 connection carrying CONNECT tunnels (RFC 9113 section 8.5), client or server side,
/// over a transport stream (TLS). One read loop owns parsing and dispatch; frames from every
/// stream are queued into one output buffer and written in batches by whichever writer finds no
/// batch in flight (one transport write per batch, no writer thread). Flow control per stream and
/// per connection; END_STREAM half-closes; RST_STREAM on abort; GOAWAY on shutdown and on
/// connection errors. Every stream is an <see cref="Http2Stream"/>. With a keep-alive
/// (<see cref="Http2ConnectionOptions.KeepAliveInterval"/>) a silent peer is pinged and, when it
/// stays silent, the connection closed; the peer's own PINGs are answered within a budget.
/// </summary>
public sealed partial class Http2Connection : IAsyncDisposable
{
    private readonly Stream _transport;
    private readonly bool _isClient;
    private readonly Http2ConnectionOptions _options;
    private readonly Func<Http2Stream, Task>? _onStream;
    private readonly HpackDecoder _decoder;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Http2Stream> _streams = [];
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Output: frames are appended to _pending under _lock; one flusher at a time swaps it with
    // _spare and writes it. Writers that must wait for their bytes wait on _nextBatch.
    private ArrayBufferWriter<byte> _pending = new(16 * 1024);
    private ArrayBufferWriter<byte> _spare = new(16 * 1024);
    private bool _flushing;
    private TaskCompletionSource? _nextBatch;

    private int _nextStreamId;
    private int _lastPeerStreamId;
    private long _sendWindow = Http2Protocol.DefaultWindowSize; // the peer's connection window for our DATA
    private int _peerInitialWindow = Http2Protocol.DefaultWindowSize;
    private int _peerMaxFrameSize = Http2Protocol.DefaultMaxFrameSize;
    private int _peerMaxStreams = int.MaxValue;
    private int _receiveConsumed; // connection-level bytes consumed since the last WINDOW_UPDATE
    private bool _goAwaySent;
    private bool _goAwayReceived;
    private Exception? _closedBy;
    private int _started;
    // Keep-alive: the read loop stamps every read; the timer (one per connection, re-armed for the
    // next deadline) sends a PING after KeepAliveInterval of silence and closes the connection when
    // nothing at all arrives within KeepAliveTimeout of it.
    private long _lastReceived; // timestamp (TimeProvider) of the last read from the transport
    private long _reads; // reads so far: a PING is answered when this moves past _readsAtPing
    private long _readsAtPing;
    private long _pingSentAt;
    private bool _pingOutstanding;
    private ulong _pingsSent;
    private ITimer? _keepAlive;
    private double _peerPingTokens;
    private long _peerPingRefilledAt;
    private Http2CloseReason? _lostReason;
    private List<(ulong Data, TaskCompletionSource Answered)>? _pings; // PingAsync's, waiting for their ACK
    private ITimer? _idleTimer;
    private long _idleSince; // timestamp at which the last stream ended (or the connection started)

    private Http2Connection(Stream transport, bool isClient, Http2ConnectionOptions options, Func<Http2Stream, Task>? onStream)
    {
        _transport = transport;
        _isClient = isClient;
        _options = options;
        _onStream = onStream;
        _decoder = new HpackDecoder(Http2Protocol.DefaultHeaderTableSize, options.MaxHeaderListSize);
        _nextStreamId = isClient ? 1 : 2;
    }

    /// <summary>
    /// A client connection over <paramref name="transport"/> (already TLS-authenticated): sends the
    /// preface and SETTINGS and starts the read loop. The connection owns the transport.
    /// </summary>
    public static Http2Connection StartClient(Stream transport, Http2ConnectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        var connection = new Http2Connection(transport, isClient: true, options ?? new Http2ConnectionOptions(), null);
        connection.Start();
        return connection;
    }

    /// <summary>
    /// A server connection over <paramref name="transport"/>: each CONNECT request becomes an
    /// <see cref="Http2Stream"/> passed to <paramref name="onStream"/>, which must answer it with
    /// <see cref="Http2Stream.RespondAsync"/> and dispose it when done. Other methods get 405.
    /// </summary>
    public static Http2Connection StartServer(Stream transport, Func<Http2Stream, Task> onStream, Http2ConnectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(onStream);
        var connection = new Http2Connection(transport, isClient: false, options ?? new Http2ConnectionOptions(), onStream);
        connection.Start();
        return connection;
    }

    /// <summary>Completes when the connection has closed (read loop ended, every stream failed).</summary>
    public Task Completion => _completion.Task;

    /// <summary>The transport this connection runs on.</summary>
    public Stream Transport => _transport;

    /// <summary>True while new streams may be opened: not closed, no GOAWAY either way.</summary>
    public bool IsOpen
    {
        get
        {
            lock (_lock)
            {
                return _closedBy is null && !_goAwayReceived && !_goAwaySent;
            }
        }
    }

    /// <summary>Streams open now.</summary>
    public int ActiveStreams
    {
        get
        {
            lock (_lock)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>
    /// Opens a CONNECT stream to <paramref name="authority"/> (host:port) and waits for the response
    /// HEADERS. The returned stream's <see cref="Http2Stream.Status"/> is the response status; a
    /// status other than 2xx leaves the stream closed.
    /// </summary>
    public async Task<Http2Stream> ConnectAsync(string authority, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(authority);
        if (!_isClient)
        {
            throw new InvalidOperationException("only a client opens streams");
        }

        Http2Stream stream;
        lock (_lock)
        {
            if (_closedBy is not null)
            {
                throw new IOException("the tunnel connection is closed", _closedBy);
            }

            if (_goAwayReceived || _goAwaySent)
            {
                throw new IOException("the tunnel connection is going away");
            }

            if (_streams.Count >= _peerMaxStreams)
            {
                throw new Http2StreamException(0, Http2ErrorCode.RefusedStream, $"the peer allows {_peerMaxStreams} concurrent streams");
            }

            stream = OpenConnectLocked(authority);
        }

        StartFlush();
        try
        {
            await stream.ResponseTask.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        return stream;
    }

    /// <summary>
    /// Opens a CONNECT stream to <paramref name="authority"/> and queues its HEADERS when the
    /// connection can take one now: open, no GOAWAY either way, below the peer's
    /// SETTINGS_MAX_CONCURRENT_STREAMS. Null otherwise (nothing is sent). The response arrives on
    /// <see cref="Http2Stream.ResponseTask"/>.
    /// </summary>
    internal Http2Stream? TryStartConnect(string authority)
    {
        Http2Stream stream;
        lock (_lock)
        {
            if (_closedBy is not null || _goAwayReceived || _goAwaySent || _streams.Count >= _peerMaxStreams)
            {
                return null;
            }

            stream = OpenConnectLocked(authority);
        }

        StartFlush();
        return stream;
    }

    private Http2Stream OpenConnectLocked(string authority)
    {
        int id = _nextStreamId;
        _nextStreamId += 2;
        var stream = new Http2Stream(this, id, _peerInitialWindow, _options.InitialStreamWindow);
        _streams.Add(id, stream);
        WriteHeaders(id, [new HeaderField(":method", "CONNECT"), new HeaderField(":authority", authority)], endStream: false);
        return stream;
    }

    /// <summary>True once the connection was closed because it carried no stream for <see cref="Http2ConnectionOptions.IdleTimeout"/>.</summary>
    public bool ClosedForIdleness { get; private set; }

    /// <summary>
    /// Sends GOAWAY (no new streams; open ones continue) and writes out what is queued.
    /// </summary>
    public async Task ShutdownAsync()
    {
        lock (_lock)
        {
            if (_closedBy is not null || _goAwaySent)
            {
                return;
            }

            _goAwaySent = true;
            FrameWriter.GoAway(_pending, _lastPeerStreamId, Http2ErrorCode.NoError);
        }

        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    /// <summary>Closes the transport at once: every stream fails, the peer sees the connection drop.</summary>
    public void Abort() => Close(new IOException("the tunnel connection was aborted"));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync().ConfigureAwait(false);
        Abort();
        await _completion.Task.ConfigureAwait(false);
    }

    private void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            return;
        }

        lock (_lock)
        {
            if (_isClient)
            {
                Http2Protocol.ClientPreface.CopyTo(_pending.GetSpan(Http2Protocol.ClientPreface.Length));
                _pending.Advance(Http2Protocol.ClientPreface.Length);
                FrameWriter.Settings(_pending,
                [
                    new Setting(SettingId.EnablePush, 0),
                    new Setting(SettingId.InitialWindowSize, (uint)_options.InitialStreamWindow),
                    new Setting(SettingId.MaxFrameSize, (uint)_options.MaxFrameSize),
                    new Setting(SettingId.MaxHeaderListSize, (uint)_options.MaxHeaderListSize),
                ]);
            }
            else
            {
                FrameWriter.Settings(_pending,
                [
                    new Setting(SettingId.MaxConcurrentStreams, (uint)_options.MaxConcurrentStreams),
                    new Setting(SettingId.InitialWindowSize, (uint)_options.InitialStreamWindow),
                    new Setting(SettingId.MaxFrameSize, (uint)_options.MaxFrameSize),
                    new Setting(SettingId.MaxHeaderListSize, (uint)_options.MaxHeaderListSize),
                ]);
            }

            if (_options.ConnectionWindow > Http2Protocol.DefaultWindowSize)
            {
                FrameWriter.WindowUpdate(_pending, 0, _options.ConnectionWindow - Http2Protocol.DefaultWindowSize);
            }
        }

        StartFlush();
        if (_options.IdleTimeout is { } idle)
        {
            lock (_lock)
            {
                _idleSince = IdleClock.GetTimestamp();
                _idleTimer = IdleClock.CreateTimer(static state => ((Http2Connection)state!).IdleTick(), this, idle, Timeout.InfiniteTimeSpan);
            }
        }

        lock (_lock)
        {
            long now = _options.TimeProvider.GetTimestamp();
            _lastReceived = now;
            _peerPingRefilledAt = now;
            _peerPingTokens = _options.PeerPingBurst;
            if (_options.KeepAliveInterval is { } interval)
            {
                _keepAlive = _options.TimeProvider.CreateTimer(static state => ((Http2Connection)state!).KeepAliveTick(), this, interval, Timeout.InfiniteTimeSpan);
            }
        }

        if (_options.ReadThread)
        {
            // Reads complete synchronously on this thread, so the loop never leaves it until the connection ends.
            new Thread(static state => _ = ((Http2Connection)state!).ReadLoopAsync(), 256 * 1024) { IsBackground = true, Name = "tunnel-read" }.UnsafeStart(this);
        }
        else
        {
            _ = Task.Run(ReadLoopAsync);
        }
    }

    /// <summary>
    /// The idle timer fired: closes the connection (GOAWAY, then the transport) when it has had no
    /// stream for the whole idle period, else waits for the rest of it (or for the last stream to end,
    /// which re-arms the timer).
    /// </summary>
    private TimeProvider IdleClock => _options.IdleTimeProvider ?? _options.TimeProvider;

    private void IdleTick()
    {
        TimeSpan limit = _options.IdleTimeout!.Value;
        lock (_lock)
        {
            if (_closedBy is not null || _goAwaySent || _streams.Count > 0)
            {
                return;
            }

            TimeSpan idle = IdleClock.GetElapsedTime(_idleSince);
            if (idle < limit)
            {
                _idleTimer?.Change(limit - idle, Timeout.InfiniteTimeSpan);
                return;
            }

            // From here no stream can be opened by either side: ours see _goAwaySent, the peer's are refused.
            _goAwaySent = true;
            ClosedForIdleness = true;
            FrameWriter.GoAway(_pending, _lastPeerStreamId, Http2ErrorCode.NoError);
        }

        _options.OnIdleClose?.Invoke(this);
        _ = CloseAfterFlushAsync();
    }

    private async Task CloseAfterFlushAsync()
    {
        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }

        Close(new IOException("the tunnel connection was closed after its idle period"));
    }

    /// <summary>
    /// The keep-alive timer fired: after <see cref="Http2ConnectionOptions.KeepAliveInterval"/> with
    /// nothing received, queues a PING and waits <see cref="Http2ConnectionOptions.KeepAliveTimeout"/>
    /// for anything at all from the peer (its ACK, or any other frame); when nothing came, closes the
    /// connection and fails every stream on it. A connection that keeps receiving never pings: the
    /// timer only moves its deadline on.
    /// </summary>
    private void KeepAliveTick()
    {
        TimeSpan interval = _options.KeepAliveInterval!.Value;
        TimeSpan timeout = _options.KeepAliveTimeout;
        TimeProvider time = _options.TimeProvider;
        bool close = false;
        bool flush = false;
        lock (_lock)
        {
            if (_closedBy is not null)
            {
                return;
            }

            long now = time.GetTimestamp();
            if (_pingOutstanding)
            {
                if (Volatile.Read(ref _reads) != _readsAtPing)
                {
                    _pingOutstanding = false; // the peer answered (or sent something): alive
                }
                else
                {
                    TimeSpan waited = time.GetElapsedTime(_pingSentAt, now);
                    if (waited >= timeout)
                    {
                        close = true;
                        _lostReason ??= Http2CloseReason.KeepAliveTimeout;
                    }
                    else
                    {
                        _keepAlive?.Change(timeout - waited, Timeout.InfiniteTimeSpan);
                        return;
                    }
                }
            }

            if (!close)
            {
                TimeSpan silent = time.GetElapsedTime(Volatile.Read(ref _lastReceived), now);
                if (silent < interval)
                {
                    _keepAlive?.Change(interval - silent, Timeout.InfiniteTimeSpan);
                    return;
                }

                _pingOutstanding = true;
                _readsAtPing = Volatile.Read(ref _reads);
                _pingSentAt = now;
                FrameWriter.Ping(_pending, ++_pingsSent, ack: false);
                _keepAlive?.Change(timeout, Timeout.InfiniteTimeSpan);
                flush = true;
            }
        }

        if (close)
        {
            Close(new IOException($"the tunnel peer stopped answering: no frame within {timeout.TotalSeconds:0.###} s of a keep-alive PING"));
            return;
        }

        if (flush)
        {
            StartFlush();
        }
    }

    /// <summary>
    /// Takes one PING of the peer's against the budget (<see cref="Http2ConnectionOptions.PeerPingBurst"/>
    /// refilled at <see cref="Http2ConnectionOptions.PeerPingsPerSecond"/>); under the lock. False when
    /// the peer is over it: the connection then ends with ENHANCE_YOUR_CALM, as a flood of PINGs
    /// (each of which costs us an ACK) is a connection error.
    /// </summary>
    private bool TakePeerPingLocked()
    {
        long now = _options.TimeProvider.GetTimestamp();
        double refill = _options.TimeProvider.GetElapsedTime(_peerPingRefilledAt, now).TotalSeconds * _options.PeerPingsPerSecond;
        _peerPingRefilledAt = now;
        _peerPingTokens = Math.Min(_options.PeerPingBurst, _peerPingTokens + refill);
        if (_peerPingTokens < 1)
        {
            _lostReason ??= Http2CloseReason.PingFlood;
            return false;
        }

        _peerPingTokens--;
        return true;
    }

    /// <summary>
    /// Sends a PING and completes when the peer acknowledges it (so the peer has read everything
    /// this connection sent before it); fails when the connection closes first.
    /// </summary>
    public Task PingAsync()
    {
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_closedBy is not null)
            {
                return Task.FromException(new IOException("the tunnel connection is closed", _closedBy));
            }

            // The top bit set: never one of the keep-alive's counter values.
            ulong data = (1UL << 63) | ++_pingsSent;
            (_pings ??= []).Add((data, answered));
            FrameWriter.Ping(_pending, data, ack: false);
        }

        StartFlush();
        return answered.Task;
    }

    /// <summary>A PING ACK arrived: completes the <see cref="PingAsync"/> it answers, if any.</summary>
    private void OnPingAck(ulong data)
    {
        TaskCompletionSource? answered = null;
        lock (_lock)
        {
            int i = _pings?.FindIndex(p => p.Data == data) ?? -1;
            if (i >= 0)
            {
                answered = _pings![i].Answered;
                _pings.RemoveAt(i);
            }
        }

        answered?.TrySetResult();
    }

    /// <summary>Why the connection was closed, when it was for want of answers or for abuse; null otherwise.</summary>
    public Http2CloseReason? LostReason
    {
        get
        {
            lock (_lock)
            {
                return _closedBy is null ? null : _lostReason;
            }
        }
    }

    // ---- output ----

    /// <summary>Encodes and queues a header block; called under <see cref="_lock"/>.</summary>
    private void WriteHeaders(int streamId, ReadOnlySpan<HeaderField> fields, bool endStream)
    {
        var block = new ArrayBufferWriter<byte>(64);
        HpackEncoder.Encode(block, fields);
        FrameWriter.Headers(_pending, streamId, block.WrittenSpan, endStream, _peerMaxFrameSize);
    }

    /// <summary>Starts writing the queue when no batch is in flight; never waits for the transport.</summary>
    internal void StartFlush()
    {
        lock (_lock)
        {
            if (_flushing || _pending.WrittenCount == 0 || _closedBy is not null)
            {
                return;
            }

            _flushing = true;
        }

        // Nobody waits on this batch: a failed write has already closed the connection.
        Task flush = FlushLoopAsync();
        if (!flush.IsCompleted)
        {
            _ = flush.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        else
        {
            _ = flush.Exception;
        }
    }

    /// <summary>Waits until everything queued so far has been handed to the transport.</summary>
    internal Task FlushAsync()
    {
        lock (_lock)
        {
            if (_closedBy is not null)
            {
                return Task.FromException(new IOException("the tunnel connection is closed", _closedBy));
            }

            if (_pending.WrittenCount == 0)
            {
                // Nothing queued; what is in flight may still be ours: wait for it.
                return _flushing ? (_nextBatch ??= NewBatch()).Task : Task.CompletedTask;
            }

            if (_flushing)
            {
                return (_nextBatch ??= NewBatch()).Task;
            }

            _flushing = true;
        }

        return FlushLoopAsync();
    }

    /// <summary>After queuing: waits for the batch in flight only when the queue passed the high-water mark.</summary>
    internal Task FlushIfFullAsync()
    {
        lock (_lock)
        {
            if (_closedBy is not null)
            {
                return Task.FromException(new IOException("the tunnel connection is closed", _closedBy));
            }

            if (_pending.WrittenCount < _options.WriteHighWater)
            {
                return Task.CompletedTask;
            }

            if (_flushing)
            {
                return (_nextBatch ??= NewBatch()).Task;
            }

            _flushing = true;
        }

        return FlushLoopAsync();
    }

    private static TaskCompletionSource NewBatch() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task FlushLoopAsync()
    {
        while (true)
        {
            ArrayBufferWriter<byte> batch;
            TaskCompletionSource? waiters;
            lock (_lock)
            {
                if (_pending.WrittenCount == 0 || _closedBy is not null)
                {
                    _flushing = false;
                    waiters = _nextBatch;
                    _nextBatch = null;
                    Exception? closed = _closedBy;
                    if (closed is not null)
                    {
                        waiters?.TrySetException(new IOException("the tunnel connection is closed", closed));
                    }
                    else
                    {
                        waiters?.TrySetResult();
                    }

                    return;
                }

                batch = _pending;
                _pending = _spare;
                _spare = batch;
                waiters = _nextBatch;
                _nextBatch = null;
            }

            try
            {
                await _transport.WriteAsync(batch.WrittenMemory).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                batch.ResetWrittenCount();
                Close(e);
                waiters?.TrySetException(new IOException("the tunnel connection is closed", e));
                lock (_lock)
                {
                    _flushing = false;
                }

                throw new IOException("the tunnel connection is closed", e);
            }

            if (batch.Capacity > 4 * _options.WriteHighWater)
            {
                // One huge batch should not pin its buffer for the connection's lifetime.
                lock (_lock)
                {
                    _spare = new ArrayBufferWriter<byte>(16 * 1024);
                }
            }
            else
            {
                batch.ResetWrittenCount();
            }

            waiters?.TrySetResult();
        }
    }

    // ---- called by streams ----

    internal int PeerMaxFrameSize => _peerMaxFrameSize;

    internal Lock Gate => _lock;

    internal ArrayBufferWriter<byte> Output => _pending;

    internal Exception? ClosedBy => _closedBy;

    /// <summary>Takes up to <paramref name="wanted"/> bytes of the connection window; under the lock.</summary>
    internal int TakeConnectionWindow(int wanted)
    {
        int n = (int)Math.Min(wanted, _sendWindow);
        _sendWindow -= Math.Max(n, 0);
        return Math.Max(n, 0);
    }

    /// <summary>Counts bytes a stream's reader consumed against the connection window; under the lock.</summary>
    internal void ConsumedLocked(int bytes)
    {
        _receiveConsumed += bytes;
        if (_receiveConsumed >= _options.ConnectionWindow / 2)
        {
            FrameWriter.WindowUpdate(_pending, 0, _receiveConsumed);
            _receiveConsumed = 0;
        }
    }

    /// <summary>Queues a response HEADERS; under the lock.</summary>
    internal void WriteResponseLocked(int streamId, int status, bool endStream) =>
        WriteHeaders(streamId, [new HeaderField(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture))], endStream);

    /// <summary>Forgets a stream that is closed both ways or reset; under the lock.</summary>
    internal void RemoveLocked(Http2Stream stream)
    {
        if (_streams.Remove(stream.Id) && _streams.Count == 0 && _idleTimer is not null && _closedBy is null)
        {
            _idleSince = IdleClock.GetTimestamp();
            _idleTimer.Change(_options.IdleTimeout!.Value, Timeout.InfiniteTimeSpan);
        }
    }

    internal bool IsClient => _isClient;
}
