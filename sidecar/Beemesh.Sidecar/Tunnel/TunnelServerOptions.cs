using System.Net;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>Settings of a <see cref="TunnelServer"/>.</summary>
public sealed class TunnelServerOptions
{
    /// <summary>Where the tunnel listens; default 127.0.0.1:15008 (port 0 picks a free one).</summary>
    public IPEndPoint ListenEndpoint { get; init; } = new(IPAddress.Loopback, TunnelProtocol.DefaultPort);

    /// <summary>
    /// A socket from <see cref="TunnelServer.Listen"/>, already listening, which the server takes over
    /// (<see cref="ListenEndpoint"/> is then not used): the endpoint can be advertised before the
    /// server starts, and a caller who comes early waits in its backlog instead of being refused.
    /// </summary>
    public System.Net.Sockets.Socket? Listener { get; init; }

    /// <summary>Namespace of the workload behind this sidecar (selects policies). Required.</summary>
    public required string WorkloadNamespace { get; init; }

    /// <summary>Labels of the workload, matched against policy selectors; default none.</summary>
    public IReadOnlyDictionary<string, string> WorkloadLabels { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Workload ports declared HTTP (<c>--port N/http</c>): their flows are served as HTTP/1.1 or HTTP/2
    /// (prior knowledge) by the sidecar itself, every request authorized with its method, path and
    /// host and forwarded to the workload over HTTP/1.1; default none (every port a TCP tunnel).
    /// </summary>
    public IReadOnlySet<int> HttpPorts { get; init; } = new HashSet<int>();

    /// <summary>Concurrent flows per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); default 1000.</summary>
    public int MaxStreamsPerConnection { get; init; } = 1000;

    /// <summary>
    /// How long a caller's connection may carry no flow before the server sends GOAWAY and closes it;
    /// default 5 minutes, longer than the callers' own limit (<see cref="TunnelClientPoolOptions.IdleTimeout"/>),
    /// so normally the caller closes first and this only reclaims connections of callers that vanished.
    /// Null keeps idle connections open.
    /// </summary>
    public TimeSpan? IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a caller's connection may send nothing before the server sends it a PING; default
    /// 10 s (<see cref="Beemesh.Agent.Client.TunnelKeepAlive.DefaultInterval"/>). A connection that
    /// keeps sending frames is never pinged. Null turns the keep-alive off.
    /// </summary>
    public TimeSpan? KeepAliveInterval { get; init; } = Beemesh.Agent.Client.TunnelKeepAlive.DefaultInterval;

    /// <summary>
    /// How long a PING has to be answered (its ACK or any frame) before the connection is closed and
    /// every flow on it reset, the workload's side with a TCP RST; default 10 s. A caller whose
    /// machine died, whose network was cut or whose process was stopped with a flow open is so cut
    /// within <see cref="KeepAliveInterval"/> + this.
    /// </summary>
    public TimeSpan KeepAliveTimeout { get; init; } = Beemesh.Agent.Client.TunnelKeepAlive.DefaultTimeout;

    /// <summary>
    /// Clock of the keep-alive; default the system clock (it measures the network, not SVID
    /// lifetimes, so it does not follow the server's <see cref="TimeProvider"/>).
    /// </summary>
    public TimeProvider? KeepAliveTimeProvider { get; init; }
}
