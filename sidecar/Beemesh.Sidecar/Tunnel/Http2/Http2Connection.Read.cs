using System.Buffers;

namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>The read side: the one loop that parses and dispatches every frame of the connection.</summary>
public sealed partial class Http2Connection
{
    private readonly ArrayBufferWriter<byte> _headerBlock = new(256);
    private int _continuationStream; // the stream whose header block is being continued, or 0
    private bool _continuationEndsStream;
    private bool _settingsSeen;

    private async Task ReadLoopAsync()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(2 * (_options.MaxFrameSize + Http2Protocol.FrameHeaderLength));
        Exception? error = null;
        try
        {
            int start = 0;
            int end = 0;
            if (!_isClient)
            {
                end = await ReadPrefaceAsync(buffer).ConfigureAwait(false);
                start = Http2Protocol.ClientPreface.Length;
            }

            while (true)
            {
                while (FrameReader.TryReadFrame(buffer.AsSpan(start, end - start), _options.MaxFrameSize, out FrameHeader header, out int consumed))
                {
                    try
                    {
                        Dispatch(header, buffer.AsSpan(start + Http2Protocol.FrameHeaderLength, header.Length));
                    }
                    catch (Http2StreamException e) when (e.StreamId != 0)
                    {
                        ResetFromPeerError(e);
                    }

                    start += consumed;
                }

                StartFlush();
                if (start == end)
                {
                    start = end = 0;
                }
                else if (end == buffer.Length)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }

                int read = await _transport.ReadAsync(buffer.AsMemory(end)).ConfigureAwait(false);
                if (read == 0)
                {
                    error = new IOException(start == end ? "the tunnel connection was closed by the peer" : "the tunnel connection ended inside a frame");
                    break;
                }

                // Anything from the peer shows it alive: the keep-alive PING waits for silence.
                Volatile.Write(ref _lastReceived, _options.TimeProvider.GetTimestamp());
                Volatile.Write(ref _reads, _reads + 1);
                end += read;
            }
        }
        catch (Http2ConnectionException e)
        {
            error = e;
            lock (_lock)
            {
                if (_closedBy is null)
                {
                    FrameWriter.GoAway(_pending, _lastPeerStreamId, e.ErrorCode);
                    _goAwaySent = true;
                }
            }

            try
            {
                await FlushAsync().WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
            catch (Exception flush) when (flush is IOException or TimeoutException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or NotSupportedException)
        {
            error = e;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        Close(error ?? new IOException("the tunnel connection closed"));
    }

    private async Task<int> ReadPrefaceAsync(byte[] buffer)
    {
        int end = 0;
        int length = Http2Protocol.ClientPreface.Length;
        while (end < length)
        {
            int read = await _transport.ReadAsync(buffer.AsMemory(end)).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("the tunnel connection ended before the HTTP/2 preface");
            }

            end += read;
            int check = Math.Min(end, length);
            if (!buffer.AsSpan(0, check).SequenceEqual(Http2Protocol.ClientPreface[..check]))
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "not the HTTP/2 client preface");
            }
        }

        return end;
    }

    private void Dispatch(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (_continuationStream != 0 && (header.Type != FrameType.Continuation || header.StreamId != _continuationStream))
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a {header.Type} frame inside the header block of stream {_continuationStream}");
        }

        if (!_settingsSeen && (header.Type != FrameType.Settings || header.Has(FrameFlags.Ack)))
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a {header.Type} frame before the peer's SETTINGS");
        }

        switch (header.Type)
        {
            case FrameType.Data:
                OnData(header, payload);
                break;
            case FrameType.Headers:
                OnHeaders(header, FrameReader.HeaderBlock(header, payload));
                break;
            case FrameType.Continuation:
                OnContinuation(header, payload);
                break;
            case FrameType.Priority:
                FrameReader.Priority(header, payload);
                break;
            case FrameType.RstStream:
                OnRstStream(header, FrameReader.RstStream(header, payload));
                break;
            case FrameType.Settings:
                OnSettings(header, FrameReader.Settings(header, payload));
                break;
            case FrameType.PushPromise:
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PUSH_PROMISE, which is disabled");
            case FrameType.Ping:
                ulong data = FrameReader.Ping(header, payload);
                if (!header.Has(FrameFlags.Ack))
                {
                    lock (_lock)
                    {
                        if (!TakePeerPingLocked())
                        {
                            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, "a flood of PING frames");
                        }

                        FrameWriter.Ping(_pending, data, ack: true);
                    }
                }
                else
                {
                    OnPingAck(data);
                }

                break;
            case FrameType.GoAway:
                OnGoAway(FrameReader.GoAway(header, payload));
                break;
            case FrameType.WindowUpdate:
                OnWindowUpdate(header, FrameReader.WindowUpdate(header, payload));
                break;
            default:
                break; // unknown frame types are ignored (RFC 9113 section 4.1)
        }
    }

    private void OnData(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        ReadOnlySpan<byte> data = FrameReader.Data(header, payload);
        Http2Stream? stream;
        lock (_lock)
        {
            // The whole frame, padding included, counts against the connection window.
            _receiveConsumed += header.Length - data.Length;
            if (!_streams.TryGetValue(header.StreamId, out stream))
            {
                // A stream we closed or reset may still have frames in flight: credit them to the
                // connection and tell the peer. An idle stream is a connection error.
                CheckNotIdle(header);
                _receiveConsumed += data.Length;
                FrameWriter.RstStream(_pending, header.StreamId, Http2ErrorCode.StreamClosed);
                return;
            }
        }

        stream.OnData(data, header.Length - data.Length, header.Has(FrameFlags.EndStream));
    }

    private void OnHeaders(in FrameHeader header, ReadOnlySpan<byte> fragment)
    {
        _headerBlock.ResetWrittenCount();
        _headerBlock.Write(fragment);
        _continuationEndsStream = header.Has(FrameFlags.EndStream);
        if (!header.Has(FrameFlags.EndHeaders))
        {
            _continuationStream = header.StreamId;
            return;
        }

        OnHeaderBlock(header.StreamId, _continuationEndsStream);
    }

    private void OnContinuation(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (_continuationStream == 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "a CONTINUATION frame without a header block to continue");
        }

        if (_headerBlock.WrittenCount + payload.Length > _options.MaxHeaderListSize + _options.MaxFrameSize)
        {
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, "a header block over the header list limit");
        }

        _headerBlock.Write(payload);
        if (header.Has(FrameFlags.EndHeaders))
        {
            _continuationStream = 0;
            OnHeaderBlock(header.StreamId, _continuationEndsStream);
        }
    }

    private void OnHeaderBlock(int streamId, bool endStream)
    {
        // Decoded whatever happens to the stream: the dynamic table is connection state.
        List<HeaderField> fields = _decoder.Decode(_headerBlock.WrittenSpan);
        Http2Stream? stream;
        lock (_lock)
        {
            _streams.TryGetValue(streamId, out stream);
        }

        if (stream is not null)
        {
            // A client's response (or a trailer), a server's trailer.
            stream.OnHeaders(fields, endStream);
            return;
        }

        if (_isClient || (streamId & 1) == 0)
        {
            lock (_lock)
            {
                if (streamId < _nextStreamId && (streamId & 1) == 1)
                {
                    return; // a response on a stream we already reset: nothing to do
                }
            }

            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"HEADERS on stream {streamId}, which the peer may not open");
        }

        if (streamId <= _lastPeerStreamId)
        {
            throw new Http2ConnectionException(Http2ErrorCode.StreamClosed, $"HEADERS on closed stream {streamId}");
        }

        _lastPeerStreamId = streamId;
        OnRequest(streamId, fields, endStream);
    }

    private void OnRequest(int streamId, List<HeaderField> fields, bool endStream)
    {
        string? method = null;
        string? authority = null;
        bool malformed = false;
        bool regular = false;
        foreach (HeaderField field in fields)
        {
            if (field.Name.Length > 0 && field.Name[0] == ':')
            {
                malformed |= regular; // pseudo-headers come first
                switch (field.Name)
                {
                    case ":method" when method is null:
                        method = field.Value;
                        break;
                    case ":authority" when authority is null:
                        authority = field.Value;
                        break;
                    case ":scheme" or ":path" or ":protocol":
                        break; // checked below for CONNECT; other methods are answered 405
                    default:
                        malformed = true;
                        break;
                }
            }
            else
            {
                regular = true;
                malformed |= HasUppercase(field.Name);
            }
        }

        bool plainConnect = method == "CONNECT" && !fields.Exists(static f => f.Name is ":scheme" or ":path" or ":protocol");
        lock (_lock)
        {
            if (malformed || method is null)
            {
                FrameWriter.RstStream(_pending, streamId, Http2ErrorCode.ProtocolError);
                return;
            }

            if (_goAwaySent || _closedBy is not null || _streams.Count >= _options.MaxConcurrentStreams)
            {
                FrameWriter.RstStream(_pending, streamId, Http2ErrorCode.RefusedStream);
                return;
            }

            if (!plainConnect || string.IsNullOrEmpty(authority) || endStream)
            {
                // Only plain CONNECT tunnels are served here (RFC 9113 section 8.5).
                WriteHeaders(streamId, [new HeaderField(":status", method == "CONNECT" ? "400" : "405")], endStream: true);
                if (!endStream)
                {
                    FrameWriter.RstStream(_pending, streamId, Http2ErrorCode.NoError);
                }

                return;
            }
        }

        var stream = new Http2Stream(this, streamId, _peerInitialWindow, _options.InitialStreamWindow) { Authority = authority };
        lock (_lock)
        {
            if (_goAwaySent || _closedBy is not null)
            {
                // Closed for idleness since the check above.
                FrameWriter.RstStream(_pending, streamId, Http2ErrorCode.RefusedStream);
                return;
            }

            stream.SetSendWindowLocked(_peerInitialWindow);
            _streams.Add(streamId, stream);
        }

        _ = RunHandlerAsync(stream);
    }

    private async Task RunHandlerAsync(Http2Stream stream)
    {
        try
        {
            await _onStream!(stream).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The handler owns its errors; one that escapes resets only its own stream.
            stream.Reset(Http2ErrorCode.InternalError);
        }
    }

    private void OnRstStream(in FrameHeader header, Http2ErrorCode code)
    {
        Http2Stream? stream;
        lock (_lock)
        {
            if (!_streams.TryGetValue(header.StreamId, out stream))
            {
                CheckNotIdle(header);
                return;
            }
        }

        stream.OnReset(code);
    }

    private void OnSettings(in FrameHeader header, Setting[] settings)
    {
        if (header.Has(FrameFlags.Ack))
        {
            return;
        }

        _settingsSeen = true;
        List<Http2Stream>? wake = null;
        lock (_lock)
        {
            foreach (Setting setting in settings)
            {
                switch (setting.Id)
                {
                    case SettingId.InitialWindowSize:
                        int delta = (int)setting.Value - _peerInitialWindow;
                        _peerInitialWindow = (int)setting.Value;
                        foreach (Http2Stream stream in _streams.Values)
                        {
                            if (!stream.AdjustSendWindowLocked(delta))
                            {
                                throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "an initial window change pushes a stream window over 2^31-1");
                            }

                            if (delta > 0)
                            {
                                (wake ??= []).Add(stream);
                            }
                        }

                        break;
                    case SettingId.MaxFrameSize:
                        _peerMaxFrameSize = (int)setting.Value;
                        break;
                    case SettingId.MaxConcurrentStreams:
                        _peerMaxStreams = (int)Math.Min(setting.Value, int.MaxValue);
                        break;
                    case SettingId.EnablePush when !_isClient && setting.Value != 0:
                        break; // we never push
                }
            }

            FrameWriter.SettingsAck(_pending);
        }

        if (wake is not null)
        {
            foreach (Http2Stream stream in wake)
            {
                stream.WakeWriter();
            }
        }
    }

    private void OnGoAway((int LastStreamId, Http2ErrorCode ErrorCode) goAway)
    {
        List<Http2Stream> refused = [];
        lock (_lock)
        {
            _goAwayReceived = true;
            foreach (Http2Stream stream in _streams.Values)
            {
                if (stream.Id > goAway.LastStreamId && (stream.Id & 1) == (_isClient ? 1 : 0))
                {
                    refused.Add(stream);
                }
            }
        }

        foreach (Http2Stream stream in refused)
        {
            stream.OnReset(Http2ErrorCode.RefusedStream);
        }
    }

    private void OnWindowUpdate(in FrameHeader header, int increment)
    {
        if (header.StreamId == 0)
        {
            List<Http2Stream> waiting = [];
            lock (_lock)
            {
                if (_sendWindow + increment > Http2Protocol.MaxWindowSize)
                {
                    throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "the connection window over 2^31-1");
                }

                _sendWindow += increment;
                foreach (Http2Stream stream in _streams.Values)
                {
                    if (stream.IsWaitingForWindow)
                    {
                        waiting.Add(stream);
                    }
                }
            }

            foreach (Http2Stream stream in waiting)
            {
                stream.WakeWriter();
            }

            return;
        }

        Http2Stream? target;
        lock (_lock)
        {
            if (!_streams.TryGetValue(header.StreamId, out target))
            {
                CheckNotIdle(header);
                return;
            }

            if (!target.AdjustSendWindowLocked(increment))
            {
                throw new Http2StreamException(header.StreamId, Http2ErrorCode.FlowControlError, "a stream window over 2^31-1");
            }
        }

        target.WakeWriter();
    }

    /// <summary>A frame for a stream never opened is a connection error (RFC 9113 section 5.1); under the lock.</summary>
    private void CheckNotIdle(in FrameHeader header)
    {
        bool ours = (header.StreamId & 1) == (_isClient ? 1 : 0);
        bool idle = ours ? header.StreamId >= _nextStreamId : header.StreamId > _lastPeerStreamId;
        if (idle)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a {header.Type} frame on idle stream {header.StreamId}");
        }
    }

    private void ResetFromPeerError(Http2StreamException e)
    {
        Http2Stream? stream;
        lock (_lock)
        {
            _streams.TryGetValue(e.StreamId, out stream);
            if (stream is null)
            {
                FrameWriter.RstStream(_pending, e.StreamId, e.ErrorCode);
                return;
            }
        }

        stream.Reset(e.ErrorCode, e);
    }

    /// <summary>Ends the connection: closes the transport and fails every stream (first call wins).</summary>
    private void Close(Exception reason)
    {
        List<Http2Stream> streams;
        TaskCompletionSource? waiters;
        List<(ulong Data, TaskCompletionSource Answered)>? pings;
        lock (_lock)
        {
            if (_closedBy is not null)
            {
                return;
            }

            _closedBy = reason;
            _keepAlive?.Dispose();
            _idleTimer?.Dispose();
            streams = [.. _streams.Values];
            _streams.Clear();
            pings = _pings;
            _pings = null;
            waiters = _nextBatch;
            _nextBatch = null;
        }

        try
        {
            _transport.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
        }

        waiters?.TrySetException(new IOException("the tunnel connection is closed", reason));
        foreach ((_, TaskCompletionSource answered) in pings ?? [])
        {
            answered.TrySetException(new IOException("the tunnel connection is closed", reason));
        }

        foreach (Http2Stream stream in streams)
        {
            stream.OnConnectionClosed(reason);
        }

        Http2CloseReason? lost;
        lock (_lock)
        {
            lost = _lostReason;
        }

        if (lost is { } why)
        {
            _options.OnLost?.Invoke(this, why, streams.Count);
        }

        _completion.TrySetResult();
    }

    private static bool HasUppercase(string name)
    {
        foreach (char c in name)
        {
            if (c is >= 'A' and <= 'Z')
            {
                return true;
            }
        }

        return false;
    }
}
