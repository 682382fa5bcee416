namespace Beemesh.Sidecar.Tunnel;

/// <summary>Settings of a <see cref="TunnelClientPool"/>.</summary>
public sealed class TunnelClientPoolOptions
{
    /// <summary>
    /// How long a pooled connection may carry no flow before it is closed (GOAWAY); the next flow to
    /// its destination opens a fresh one. Default 90 seconds; null keeps idle connections open.
    /// </summary>
    public TimeSpan? IdleTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Connections per destination (and SVID generation): a new flow that finds every connection at
    /// the peer's SETTINGS_MAX_CONCURRENT_STREAMS opens another, up to this many; default 8.
    /// </summary>
    public int MaxConnectionsPerDestination { get; init; } = 8;

    /// <summary>
    /// Flows that may wait for a stream when every connection to a destination is full and no more
    /// may be opened; one more fails at once with <see cref="HttpRequestException"/>. Default 256.
    /// </summary>
    public int MaxWaitingFlows { get; init; } = 256;

    /// <summary>Clock of the idle timers; default the <see cref="Beemesh.Spiffe.X509.X509Source"/>'s.</summary>
    public TimeProvider? TimeProvider { get; init; }

    /// <summary>
    /// How long a pooled connection may receive nothing before it sends a PING; default 10 s
    /// (<see cref="Beemesh.Agent.Client.TunnelKeepAlive.DefaultInterval"/>). Null turns the keep-alive off.
    /// </summary>
    public TimeSpan? KeepAliveInterval { get; init; } = Beemesh.Agent.Client.TunnelKeepAlive.DefaultInterval;

    /// <summary>
    /// How long a PING has to be answered before the connection is closed and every flow on it reset
    /// (the guest's side with a TCP RST); default 10 s.
    /// </summary>
    public TimeSpan KeepAliveTimeout { get; init; } = Beemesh.Agent.Client.TunnelKeepAlive.DefaultTimeout;

    /// <summary>Clock of the keep-alive; default the <see cref="Beemesh.Spiffe.X509.X509Source"/>'s system clock.</summary>
    public TimeProvider? KeepAliveTimeProvider { get; init; }
}
