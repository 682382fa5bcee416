using System.Net;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>Settings of a <see cref="TunnelServer"/>.</summary>
public sealed class TunnelServerOptions
{
    /// <summary>Where the tunnel listens; default 127.0.0.1:15008 (port 0 picks a free one).</summary>
    public IPEndPoint ListenEndpoint { get; init; } = new(IPAddress.Loopback, TunnelProtocol.DefaultPort);

    /// <summary>Namespace of the workload behind this sidecar (selects policies). Required.</summary>
    public required string WorkloadNamespace { get; init; }

    /// <summary>Labels of the workload, matched against policy selectors; default none.</summary>
    public IReadOnlyDictionary<string, string> WorkloadLabels { get; init; } = new Dictionary<string, string>();

    /// <summary>Concurrent flows per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); default 1000.</summary>
    public int MaxStreamsPerConnection { get; init; } = 1000;
}
