namespace Beemesh.Sidecar.Tunnel.Http2;

/// <summary>Settings of one side of an <see cref="Http2Connection"/>.</summary>
public sealed class Http2ConnectionOptions
{
    /// <summary>
    /// Receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE); default 8 MiB, so one stream
    /// may carry a bulk flow between sidecars on one host without stalling on window / RTT.
    /// </summary>
    public int InitialStreamWindow { get; init; } = 8 << 20;

    /// <summary>Receive window of the connection; default 32 MiB.</summary>
    public int ConnectionWindow { get; init; } = 32 << 20;

    /// <summary>Concurrent streams the peer may open (SETTINGS_MAX_CONCURRENT_STREAMS); default 1000.</summary>
    public int MaxConcurrentStreams { get; init; } = 1000;

    /// <summary>Largest frame payload accepted (SETTINGS_MAX_FRAME_SIZE); default 64 KiB.</summary>
    public int MaxFrameSize { get; init; } = 64 * 1024;

    /// <summary>Largest decoded header list accepted; default 16 KiB.</summary>
    public int MaxHeaderListSize { get; init; } = 16 * 1024;

    /// <summary>
    /// Bytes of queued output past which a writer waits for the batch in flight to be written
    /// (below it, writes queue behind the batch and return at once); default 256 KiB.
    /// </summary>
    public int WriteHighWater { get; init; } = 256 * 1024;

    /// <summary>
    /// How long the connection may go without a frame from the peer before it sends a PING; a
    /// second interval without any frame closes it (a peer that vanished without a FIN or RST).
    /// Null (the default) disables it.
    /// </summary>
    public TimeSpan? KeepAliveInterval { get; init; }

    /// <summary>
    /// How long the connection may carry no stream before it sends GOAWAY (NO_ERROR) and closes;
    /// a stream opened within the period keeps it, and the period starts again when the last stream
    /// ends. Null (the default) keeps an idle connection open.
    /// </summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>Called (on the timer) when the connection starts closing for idleness; default none.</summary>
    public Action<Http2Connection>? OnIdleClose { get; init; }

    /// <summary>Clock of the keep-alive timer (and of the idle timer unless <see cref="IdleTimeProvider"/> is set); default the system clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Clock of the idle timer; default <see cref="TimeProvider"/>.</summary>
    public TimeProvider? IdleTimeProvider { get; init; }
}
