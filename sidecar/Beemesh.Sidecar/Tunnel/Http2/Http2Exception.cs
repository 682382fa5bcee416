namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>
/// A connection error (RFC 9113 section 5.4.1): the connection is ended with a GOAWAY carrying
/// <see cref="ErrorCode"/>.
/// </summary>
public sealed class Http2ConnectionException(Http2ErrorCode errorCode, string message) : Exception(message)
{
    /// <summary>The code the GOAWAY carries.</summary>
    public Http2ErrorCode ErrorCode { get; } = errorCode;
}

/// <summary>
/// A stream error (RFC 9113 section 5.4.2): only the stream is reset, with <see cref="ErrorCode"/>;
/// also how a reset by the peer surfaces on the stream's reads and writes.
/// </summary>
public sealed class Http2StreamException(int streamId, Http2ErrorCode errorCode, string message) : IOException(message)
{
    /// <summary>The stream.</summary>
    public int StreamId { get; } = streamId;

    /// <summary>The RST_STREAM code.</summary>
    public Http2ErrorCode ErrorCode { get; } = errorCode;
}
