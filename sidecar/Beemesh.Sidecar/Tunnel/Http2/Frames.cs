using System.Buffers;
using System.Buffers.Binary;

namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>A frame header (RFC 9113 section 4.1): 24-bit length, type, flags, 31-bit stream id.</summary>
/// <param name="Length">Payload length.</param>
/// <param name="Type">Frame type; unknown types are kept as their number.</param>
/// <param name="Flags">Flags.</param>
/// <param name="StreamId">Stream identifier (the reserved bit is dropped).</param>
public readonly record struct FrameHeader(int Length, FrameType Type, FrameFlags Flags, int StreamId)
{
    /// <summary>True when <paramref name="flag"/> is set.</summary>
    public bool Has(FrameFlags flag) => (Flags & flag) == flag;

    /// <summary>Reads a header from the first 9 bytes of <paramref name="source"/>.</summary>
    public static FrameHeader Read(ReadOnlySpan<byte> source)
    {
        int length = (source[0] << 16) | (source[1] << 8) | source[2];
        int stream = (int)(BinaryPrimitives.ReadUInt32BigEndian(source[5..]) & 0x7fff_ffff);
        return new FrameHeader(length, (FrameType)source[3], (FrameFlags)source[4], stream);
    }

    /// <summary>Writes this header into the first 9 bytes of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        destination[0] = (byte)(Length >> 16);
        destination[1] = (byte)(Length >> 8);
        destination[2] = (byte)Length;
        destination[3] = (byte)Type;
        destination[4] = (byte)Flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)StreamId & 0x7fff_ffff);
    }
}

/// <summary>One SETTINGS parameter.</summary>
/// <param name="Id">Parameter (unknown ones are kept and must be ignored).</param>
/// <param name="Value">Value.</param>
public readonly record struct Setting(SettingId Id, uint Value);

/// <summary>
/// Sans-IO frame reading: splits a byte buffer into frames and parses their payloads, checking what
/// RFC 9113 section 6 requires of each type. Violations throw <see cref="Http2ConnectionException"/>
/// (or <see cref="Http2StreamException"/> where the RFC makes them stream errors) with the RFC's code.
/// </summary>
public static class FrameReader
{
    /// <summary>
    /// Reads the frame at the start of <paramref name="input"/>: false when the buffer does not yet
    /// hold all of it. A frame longer than <paramref name="maxFrameSize"/> (our SETTINGS_MAX_FRAME_SIZE)
    /// is a FRAME_SIZE_ERROR, detected from the header alone.
    /// </summary>
    public static bool TryReadFrame(ReadOnlySpan<byte> input, int maxFrameSize, out FrameHeader header, out int consumed)
    {
        consumed = 0;
        header = default;
        if (input.Length < Http2Protocol.FrameHeaderLength)
        {
            return false;
        }

        header = FrameHeader.Read(input);
        if (header.Length > maxFrameSize)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, $"a {header.Type} frame of {header.Length} bytes exceeds the maximum frame size {maxFrameSize}");
        }

        if (input.Length < Http2Protocol.FrameHeaderLength + header.Length)
        {
            return false;
        }

        consumed = Http2Protocol.FrameHeaderLength + header.Length;
        return true;
    }

    /// <summary>The data of a DATA frame, without padding.</summary>
    public static ReadOnlySpan<byte> Data(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireStream(header);
        return Unpad(header, payload);
    }

    /// <summary>The header block fragment of a HEADERS frame, without padding and priority fields.</summary>
    public static ReadOnlySpan<byte> HeaderBlock(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireStream(header);
        ReadOnlySpan<byte> fragment = Unpad(header, payload);
        if (header.Has(FrameFlags.Priority))
        {
            if (fragment.Length < 5)
            {
                throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "a HEADERS frame too short for its priority fields");
            }

            int dependency = (int)(BinaryPrimitives.ReadUInt32BigEndian(fragment) & 0x7fff_ffff);
            if (dependency == header.StreamId)
            {
                throw new Http2StreamException(header.StreamId, Http2ErrorCode.ProtocolError, "a stream that depends on itself");
            }

            fragment = fragment[5..];
        }

        return fragment;
    }

    /// <summary>Checks a PRIORITY frame (which is otherwise ignored).</summary>
    public static void Priority(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireStream(header);
        if (payload.Length != 5)
        {
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.FrameSizeError, "a PRIORITY frame must be 5 bytes");
        }
    }

    /// <summary>The error code of an RST_STREAM frame.</summary>
    public static Http2ErrorCode RstStream(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireStream(header);
        if (payload.Length != 4)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "an RST_STREAM frame must be 4 bytes");
        }

        return (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(payload);
    }

    /// <summary>
    /// The parameters of a SETTINGS frame (none for an ACK), checked against the RFC's bounds.
    /// </summary>
    public static Setting[] Settings(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireConnection(header);
        if (header.Has(FrameFlags.Ack))
        {
            if (payload.Length != 0)
            {
                throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "a SETTINGS ACK must be empty");
            }

            return [];
        }

        if (payload.Length % 6 != 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "a SETTINGS payload must be a multiple of 6 bytes");
        }

        var settings = new Setting[payload.Length / 6];
        for (int i = 0; i < settings.Length; i++)
        {
            ReadOnlySpan<byte> entry = payload.Slice(i * 6, 6);
            var setting = new Setting((SettingId)BinaryPrimitives.ReadUInt16BigEndian(entry), BinaryPrimitives.ReadUInt32BigEndian(entry[2..]));
            switch (setting.Id)
            {
                case SettingId.EnablePush or SettingId.EnableConnectProtocol when setting.Value > 1:
                    throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{setting.Id} must be 0 or 1, not {setting.Value}");
                case SettingId.InitialWindowSize when setting.Value > Http2Protocol.MaxWindowSize:
                    throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, $"an initial window of {setting.Value} exceeds 2^31-1");
                case SettingId.MaxFrameSize when setting.Value is < Http2Protocol.DefaultMaxFrameSize or > Http2Protocol.MaxAllowedFrameSize:
                    throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a maximum frame size of {setting.Value} is out of range");
            }

            settings[i] = setting;
        }

        return settings;
    }

    /// <summary>The opaque data of a PING frame.</summary>
    public static ulong Ping(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireConnection(header);
        if (payload.Length != 8)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "a PING frame must be 8 bytes");
        }

        return BinaryPrimitives.ReadUInt64BigEndian(payload);
    }

    /// <summary>The last stream id and error code of a GOAWAY frame (debug data is ignored).</summary>
    public static (int LastStreamId, Http2ErrorCode ErrorCode) GoAway(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        RequireConnection(header);
        if (payload.Length < 8)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "a GOAWAY frame must be at least 8 bytes");
        }

        return ((int)(BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7fff_ffff), (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(payload[4..]));
    }

    /// <summary>
    /// Checks a frame's payload by its type with the parser for that type and returns the header
    /// block fragment of HEADERS (CONTINUATION's payload is the fragment itself); empty for every
    /// other type. Unknown types are ignored, as RFC 9113 §4.1 requires.
    /// </summary>
    public static ReadOnlySpan<byte> Check(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        switch (header.Type)
        {
            case FrameType.Data:
                Data(header, payload);
                break;
            case FrameType.Headers:
                return HeaderBlock(header, payload);
            case FrameType.Continuation:
                return payload;
            case FrameType.Priority:
                Priority(header, payload);
                break;
            case FrameType.RstStream:
                RstStream(header, payload);
                break;
            case FrameType.Settings:
                Settings(header, payload);
                break;
            case FrameType.Ping:
                Ping(header, payload);
                break;
            case FrameType.GoAway:
                GoAway(header, payload);
                break;
            case FrameType.WindowUpdate:
                WindowUpdate(header, payload);
                break;
        }

        return [];
    }

    /// <summary>
    /// The increment of a WINDOW_UPDATE frame. Zero is a PROTOCOL_ERROR: of the stream when the
    /// frame names one, of the connection otherwise.
    /// </summary>
    public static int WindowUpdate(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 4)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "a WINDOW_UPDATE frame must be 4 bytes");
        }

        int increment = (int)(BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7fff_ffff);
        if (increment == 0)
        {
            if (header.StreamId == 0)
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "a connection WINDOW_UPDATE of 0");
            }

            throw new Http2StreamException(header.StreamId, Http2ErrorCode.ProtocolError, "a stream WINDOW_UPDATE of 0");
        }

        return increment;
    }

    private static ReadOnlySpan<byte> Unpad(in FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (!header.Has(FrameFlags.Padded))
        {
            return payload;
        }

        if (payload.IsEmpty)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, $"a padded {header.Type} frame without its pad length");
        }

        int pad = payload[0];
        if (pad >= payload.Length)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a {header.Type} frame's padding is longer than its payload");
        }

        return payload[1..^pad];
    }

    private static void RequireStream(in FrameHeader header)
    {
        if (header.StreamId == 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a {header.Type} frame on stream 0");
        }
    }

    private static void RequireConnection(in FrameHeader header)
    {
        if (header.StreamId != 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"a {header.Type} frame on stream {header.StreamId}");
        }
    }
}

/// <summary>Sans-IO frame writing into an <see cref="IBufferWriter{T}"/>.</summary>
public static class FrameWriter
{
    /// <summary>Writes a frame of <paramref name="payload"/>.</summary>
    public static void Write(IBufferWriter<byte> output, FrameType type, FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        Span<byte> span = output.GetSpan(Http2Protocol.FrameHeaderLength + payload.Length);
        new FrameHeader(payload.Length, type, flags, streamId).Write(span);
        payload.CopyTo(span[Http2Protocol.FrameHeaderLength..]);
        output.Advance(Http2Protocol.FrameHeaderLength + payload.Length);
    }

    /// <summary>Writes a DATA frame (empty with END_STREAM is the half-close).</summary>
    public static void Data(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> data, bool endStream) =>
        Write(output, FrameType.Data, endStream ? FrameFlags.EndStream : FrameFlags.None, streamId, data);

    /// <summary>
    /// Writes a header block as HEADERS and as many CONTINUATION frames as
    /// <paramref name="maxFrameSize"/> requires.
    /// </summary>
    public static void Headers(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> block, bool endStream, int maxFrameSize)
    {
        int first = Math.Min(block.Length, maxFrameSize);
        FrameFlags flags = (endStream ? FrameFlags.EndStream : FrameFlags.None) | (first == block.Length ? FrameFlags.EndHeaders : FrameFlags.None);
        Write(output, FrameType.Headers, flags, streamId, block[..first]);
        block = block[first..];
        while (!block.IsEmpty)
        {
            int n = Math.Min(block.Length, maxFrameSize);
            Write(output, FrameType.Continuation, n == block.Length ? FrameFlags.EndHeaders : FrameFlags.None, streamId, block[..n]);
            block = block[n..];
        }
    }

    /// <summary>Writes a SETTINGS frame of <paramref name="settings"/>.</summary>
    public static void Settings(IBufferWriter<byte> output, ReadOnlySpan<Setting> settings)
    {
        Span<byte> payload = stackalloc byte[6 * settings.Length];
        for (int i = 0; i < settings.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload[(i * 6)..], (ushort)settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(payload[((i * 6) + 2)..], settings[i].Value);
        }

        Write(output, FrameType.Settings, FrameFlags.None, 0, payload);
    }

    /// <summary>Writes a SETTINGS ACK.</summary>
    public static void SettingsAck(IBufferWriter<byte> output) => Write(output, FrameType.Settings, FrameFlags.Ack, 0, []);

    /// <summary>Writes a WINDOW_UPDATE (stream 0: the connection's window).</summary>
    public static void WindowUpdate(IBufferWriter<byte> output, int streamId, int increment)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)increment & 0x7fff_ffff);
        Write(output, FrameType.WindowUpdate, FrameFlags.None, streamId, payload);
    }

    /// <summary>Writes an RST_STREAM.</summary>
    public static void RstStream(IBufferWriter<byte> output, int streamId, Http2ErrorCode code)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)code);
        Write(output, FrameType.RstStream, FrameFlags.None, streamId, payload);
    }

    /// <summary>Writes a PING (or its ACK).</summary>
    public static void Ping(IBufferWriter<byte> output, ulong data, bool ack)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(payload, data);
        Write(output, FrameType.Ping, ack ? FrameFlags.Ack : FrameFlags.None, 0, payload);
    }

    /// <summary>Writes a GOAWAY.</summary>
    public static void GoAway(IBufferWriter<byte> output, int lastStreamId, Http2ErrorCode code)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)lastStreamId & 0x7fff_ffff);
        BinaryPrimitives.WriteUInt32BigEndian(payload[4..], (uint)code);
        Write(output, FrameType.GoAway, FrameFlags.None, 0, payload);
    }
}
