namespace Beemesh.Identity.WorkloadApi;

/// <summary>
/// Settings of the embedded Workload API server. The limits keep any one caller (every workload
/// can reach the socket) from exhausting the agent's descriptors or memory: past a limit the
/// caller is refused and everyone else keeps being served.
/// </summary>
public sealed class WorkloadApiServerOptions
{
    /// <summary>Unix socket path to listen on; a stale socket file there is replaced. Required.</summary>
    public string SocketPath { get; set; } = string.Empty;

    /// <summary>Lifetime of issued X509-SVIDs. Default: one hour.</summary>
    public TimeSpan X509SvidTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Lifetime of issued JWT-SVIDs. Default: five minutes.</summary>
    public TimeSpan JwtSvidTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest audience a JWT-SVID may be requested for, in characters (1024).</summary>
    public const int MaxJwtAudienceLength = 1024;

    /// <summary>Most audiences one JWT-SVID may be requested for; more is InvalidArgument. Default: 32.</summary>
    public int MaxJwtAudiences { get; set; } = 32;

    /// <summary>Open connections in total; further connections are closed as soon as they are accepted. Default: 1024.</summary>
    public int MaxConnections { get; set; } = 1024;

    /// <summary>Open connections per calling process (pid); further ones from it are closed at accept. Default: 32.</summary>
    public int MaxConnectionsPerProcess { get; set; } = 32;

    /// <summary>
    /// Open connections per SPIFFE ID (the identity the caller attests to when it connects), so a
    /// workload forking many processes cannot use up <see cref="MaxConnections"/>. Default: 128.
    /// </summary>
    public int MaxConnectionsPerIdentity { get; set; } = 128;

    /// <summary>
    /// Open connections from callers with no identity when they connect (they can only be told
    /// PermissionDenied until registered), all together. Default: 64.
    /// </summary>
    public int MaxUnattestedConnections { get; set; } = 64;

    /// <summary>Concurrent HTTP/2 streams (calls) per connection; the peer is told in SETTINGS and excess streams are reset. Default: 16.</summary>
    public int MaxStreamsPerConnection { get; set; } = 16;

    /// <summary>Largest gRPC request message; larger ones end the call with ResourceExhausted. Default: 64 KiB.</summary>
    public int MaxMessageBytes { get; set; } = 64 * 1024;

    /// <summary>Largest total size of a request's headers; larger ones reset the stream. Default: 16 KiB.</summary>
    public int MaxHeaderBytes { get; set; } = 16 * 1024;

    /// <summary>A connection with no open stream for this long is closed (HTTP/2 GOAWAY). Default: two minutes.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(2);
}
