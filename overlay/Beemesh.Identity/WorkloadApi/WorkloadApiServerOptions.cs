namespace Beemesh.Identity.WorkloadApi;

/// <summary>Settings of the embedded Workload API server.</summary>
public sealed class WorkloadApiServerOptions
{
    /// <summary>Unix socket path to listen on; a stale socket file there is replaced. Required.</summary>
    public string SocketPath { get; set; } = string.Empty;

    /// <summary>Lifetime of issued X509-SVIDs. Default: one hour.</summary>
    public TimeSpan X509SvidTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Lifetime of issued JWT-SVIDs. Default: five minutes.</summary>
    public TimeSpan JwtSvidTtl { get; set; } = TimeSpan.FromMinutes(5);
}
