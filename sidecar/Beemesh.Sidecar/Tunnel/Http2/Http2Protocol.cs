namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>HTTP/2 frame types (RFC 9113 section 6).</summary>
public enum FrameType : byte
{
    /// <summary>DATA.</summary>
    Data = 0x0,

    /// <summary>HEADERS.</summary>
    Headers = 0x1,

    /// <summary>PRIORITY (deprecated, parsed and ignored).</summary>
    Priority = 0x2,

    /// <summary>RST_STREAM.</summary>
    RstStream = 0x3,

    /// <summary>SETTINGS.</summary>
    Settings = 0x4,

    /// <summary>PUSH_PROMISE (never enabled here: a protocol error when received).</summary>
    PushPromise = 0x5,

    /// <summary>PING.</summary>
    Ping = 0x6,

    /// <summary>GOAWAY.</summary>
    GoAway = 0x7,

    /// <summary>WINDOW_UPDATE.</summary>
    WindowUpdate = 0x8,

    /// <summary>CONTINUATION.</summary>
    Continuation = 0x9,
}

/// <summary>Frame flags (RFC 9113 section 6); which apply depends on the frame type.</summary>
[Flags]
public enum FrameFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>END_STREAM (DATA, HEADERS) or ACK (SETTINGS, PING): both are bit 0.</summary>
    EndStream = 0x1,

    /// <summary>ACK (SETTINGS, PING).</summary>
    Ack = 0x1,

    /// <summary>END_HEADERS (HEADERS, CONTINUATION).</summary>
    EndHeaders = 0x4,

    /// <summary>PADDED (DATA, HEADERS).</summary>
    Padded = 0x8,

    /// <summary>PRIORITY (HEADERS).</summary>
    Priority = 0x20,
}

/// <summary>HTTP/2 error codes (RFC 9113 section 7).</summary>
public enum Http2ErrorCode : uint
{
    /// <summary>Graceful shutdown.</summary>
    NoError = 0x0,

    /// <summary>Protocol error detected.</summary>
    ProtocolError = 0x1,

    /// <summary>Implementation fault.</summary>
    InternalError = 0x2,

    /// <summary>Flow-control limits exceeded.</summary>
    FlowControlError = 0x3,

    /// <summary>Settings not acknowledged.</summary>
    SettingsTimeout = 0x4,

    /// <summary>Frame received for a closed stream.</summary>
    StreamClosed = 0x5,

    /// <summary>Frame size incorrect.</summary>
    FrameSizeError = 0x6,

    /// <summary>Stream not processed.</summary>
    RefusedStream = 0x7,

    /// <summary>Stream cancelled.</summary>
    Cancel = 0x8,

    /// <summary>Compression state not updated.</summary>
    CompressionError = 0x9,

    /// <summary>TCP connection error for CONNECT method.</summary>
    ConnectError = 0xa,

    /// <summary>Processing capacity exceeded.</summary>
    EnhanceYourCalm = 0xb,

    /// <summary>Negotiated TLS parameters not acceptable.</summary>
    InadequateSecurity = 0xc,

    /// <summary>Use HTTP/1.1 for the request.</summary>
    Http11Required = 0xd,
}

/// <summary>SETTINGS parameters (RFC 9113 section 6.5.2, RFC 8441).</summary>
public enum SettingId : ushort
{
    /// <summary>SETTINGS_HEADER_TABLE_SIZE.</summary>
    HeaderTableSize = 0x1,

    /// <summary>SETTINGS_ENABLE_PUSH.</summary>
    EnablePush = 0x2,

    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS.</summary>
    MaxConcurrentStreams = 0x3,

    /// <summary>SETTINGS_INITIAL_WINDOW_SIZE.</summary>
    InitialWindowSize = 0x4,

    /// <summary>SETTINGS_MAX_FRAME_SIZE.</summary>
    MaxFrameSize = 0x5,

    /// <summary>SETTINGS_MAX_HEADER_LIST_SIZE.</summary>
    MaxHeaderListSize = 0x6,

    /// <summary>SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).</summary>
    EnableConnectProtocol = 0x8,
}

/// <summary>Protocol constants of HTTP/2 (RFC 9113).</summary>
public static class Http2Protocol
{
    /// <summary>Length of a frame header.</summary>
    public const int FrameHeaderLength = 9;

    /// <summary>The initial and smallest SETTINGS_MAX_FRAME_SIZE.</summary>
    public const int DefaultMaxFrameSize = 16_384;

    /// <summary>The largest SETTINGS_MAX_FRAME_SIZE a peer may announce.</summary>
    public const int MaxAllowedFrameSize = (1 << 24) - 1;

    /// <summary>The initial flow-control window of streams and of the connection.</summary>
    public const int DefaultWindowSize = 65_535;

    /// <summary>The largest flow-control window.</summary>
    public const int MaxWindowSize = int.MaxValue;

    /// <summary>The initial SETTINGS_HEADER_TABLE_SIZE.</summary>
    public const int DefaultHeaderTableSize = 4096;

    /// <summary>The client connection preface (RFC 9113 section 3.4).</summary>
    public static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;
}
