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
    /// How long the connection may receive nothing from the peer before it sends a PING (a
    /// connection that keeps receiving frames is never pinged). Null (the default) disables the
    /// keep-alive.
    /// </summary>
    public TimeSpan? KeepAliveInterval { get; init; }

    /// <summary>
    /// How long after its keep-alive PING the connection waits for anything from the peer (the ACK or
    /// any other frame) before it closes and fails every stream on it: a peer whose machine died,
    /// whose network was cut or whose process was stopped. Default 10 s.
    /// </summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// PINGs of the peer's answered in a burst (each costs an ACK); default 10. Refilled at
    /// <see cref="PeerPingsPerSecond"/>; a PING past the budget ends the connection with GOAWAY
    /// (ENHANCE_YOUR_CALM).
    /// </summary>
    public int PeerPingBurst { get; init; } = 10;

    /// <summary>Steady rate of the peer's PINGs answered; default 2 per second (a keep-alive needs one per interval).</summary>
    public double PeerPingsPerSecond { get; init; } = 2;

    /// <summary>
    /// Called once when the connection closed because its peer stopped answering the keep-alive or
    /// flooded it with PINGs, with the number of streams the close failed; default none.
    /// </summary>
    public Action<Http2Connection, Http2CloseReason, int>? OnLost { get; init; }

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

    /// <summary>
    /// Runs the read loop on a thread of its own instead of the thread pool; default false. For a
    /// transport whose reads block in the kernel (<see cref="Beemesh.Sidecar.Tunnel.SocketTransport"/> in direct mode):
    /// the kernel then wakes the reader itself when bytes arrive, and frames are dispatched on it
    /// with no hand-off to another thread.
    /// </summary>
    public bool ReadThread { get; init; }
}

/// <summary>Why an <see cref="Http2Connection"/> was closed by its own checks on the peer.</summary>
public enum Http2CloseReason
{
    /// <summary>Nothing arrived within the keep-alive timeout of a PING.</summary>
    KeepAliveTimeout,

    /// <summary>The peer sent PINGs faster than its budget (GOAWAY ENHANCE_YOUR_CALM).</summary>
    PingFlood,
}
