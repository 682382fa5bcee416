namespace Beemesh.Agent.Hosting;

/// <summary>Settings of a node agent.</summary>
public sealed class AgentOptions
{
    /// <summary>
    /// Directory for the CA, the sockets and other state (created with mode 0700). Required. Policies
    /// and registrations are kept in its <c>state/</c> subdirectory and survive a restart.
    /// </summary>
    public string StateDirectory { get; set; } = string.Empty;

    /// <summary>The trust domain the agent's CA issues for.</summary>
    public string TrustDomain { get; set; } = "example.org";

    /// <summary>IPv4 range mesh addresses are taken from.</summary>
    public string MeshCidr { get; set; } = "10.200.0.0/16";

    /// <summary>
    /// Lifetime of issued X509-SVIDs; default 1 h, at least <see cref="Beemesh.Identity.Authority.CertificateAuthority.MinimumX509SvidTtl"/>
    /// (checked at start). Workloads rotate them at half-life; live connections survive rotation.
    /// </summary>
    public TimeSpan X509SvidTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Longest a policy watch waits for a change before answering with the unchanged set.</summary>
    public TimeSpan MaxWatchWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often registrations are checked against their processes; a registration whose process is
    /// gone is dropped (its name stops resolving) within this interval. Default 250 ms.
    /// </summary>
    public TimeSpan ReapInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Clock for watch timeouts and report times; the system clock by default.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Root of the proc filesystem, for attestation and liveness.</summary>
    public string ProcRoot { get; set; } = "/proc";
}
