namespace Beemesh.Agent.Hosting;

/// <summary>Settings of a node agent.</summary>
public sealed class AgentOptions
{
    /// <summary>
    /// Directory for the CA, the sockets and other state (created with mode 0700). Required. Policies
    /// and registrations are kept in its <c>state/</c> subdirectory and survive a restart.
    /// </summary>
    public string StateDirectory { get; set; } = string.Empty;

    /// <summary>
    /// The trust domain the agent's CA issues for. A joined node takes its trust domain from its node
    /// credentials: <see cref="AgentHost.StartAsync"/> sets this property to it.
    /// </summary>
    public string TrustDomain { get; set; } = "example.org";

    /// <summary>IPv4 range mesh addresses are taken from. Every node of a mesh must use the same one.</summary>
    public string MeshCidr { get; set; } = "10.200.0.0/16";

    /// <summary>
    /// Prefix length of the block of <see cref="MeshCidr"/> a node of a mesh (with <see cref="Listen"/>)
    /// claims and takes its workloads' addresses from; default 24 (256 blocks of 254 addresses in the
    /// default /16), at most 30. Every node of a mesh must use the same one: a claim of another size
    /// is ignored and that node's routes are refused. A node alone uses the whole range.
    /// </summary>
    public int MeshBlockPrefix { get; set; } = Mesh.MeshBlockPlan.DefaultBlockPrefix;

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

    /// <summary>
    /// This node's name among the nodes of its trust domain (a DNS label). Required with
    /// <see cref="Listen"/> or <see cref="Join"/>; a joined node's saved name is used when not set.
    /// </summary>
    public string? NodeName { get; set; }

    /// <summary>
    /// Address of the node port (joins on the first node, overlay links); null runs the agent as a
    /// mesh of one machine. Port 0 picks a free port.
    /// </summary>
    public System.Net.IPEndPoint? Listen { get; set; }

    /// <summary>
    /// Port of the node's tunnel port on the address of <see cref="Listen"/> (default 15008; 0 picks a
    /// free port). Other nodes' sidecars open TLS to it with a workload's
    /// <see cref="Beemesh.Agent.Client.TunnelServerName"/> in SNI; it is routed to that workload's
    /// sidecar without terminating TLS. Published in the node record.
    /// </summary>
    public int TunnelPort { get; set; } = Tunnel.SniTunnelRouter.DefaultPort;

    /// <summary>
    /// Whether the node also serves the tunnel over QUIC (<see cref="Tunnel.QuicTunnelRouter"/>) when
    /// libmsquic is present (default true). Only a node where QUIC runs advertises it in its node
    /// record (capability <c>h3</c> and <see cref="Beemesh.Agent.Client.NodeRecordPayload.Quic"/>), so
    /// callers use TLS over TCP to every other node.
    /// </summary>
    public bool Quic { get; set; } = true;

    /// <summary>
    /// UDP port of the node's QUIC tunnel endpoint on the address of <see cref="Listen"/>: null
    /// (default) takes the tunnel port's number (15008/udp by default; a QUIC endpoint that cannot bind
    /// it is left off with a log line), 0 picks a free port, any other port must bind or the agent
    /// does not start.
    /// </summary>
    public int? QuicPort { get; set; }

    /// <summary>Node ports of nodes already in the mesh, tried in turn to join and as overlay contacts.</summary>
    public IReadOnlyList<System.Net.EndPoint> Join { get; set; } = [];

    /// <summary>One-time join token (the printed form); needed only until this node has joined.</summary>
    public string? JoinToken { get; set; }

    /// <summary>
    /// How long a route or node record this node publishes stays valid without renewal (default 90 s;
    /// renewed every third of it). A node that dies takes its routes off every other node within this.
    /// </summary>
    public TimeSpan RouteLease { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Share of a node certificate's lifetime after which the node renews it (default 2/3, between 0 and
    /// 1 exclusive). The first node issues itself a new node SVID from its root; a joined node asks the
    /// node holding the root (its <see cref="Join"/> contacts first, then every live node it knows) over
    /// the node port, authenticated by its current node SVID, for a new node CA and node SVID.
    /// </summary>
    public double NodeCertificateRenewAfter { get; set; } = Beemesh.Identity.Authority.NodeCertificateLifetime.DefaultRenewAfter;

    /// <summary>How long a node waits after a failed renewal before it tries again. Default: 5 min.</summary>
    public TimeSpan NodeCertificateRetryInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Validity of the node certificates the first node issues (its own node SVID, and the node CA and
    /// node SVID of nodes that join or renew). Default: one year.
    /// </summary>
    public TimeSpan NodeCertificateValidity { get; set; } = Beemesh.Identity.Authority.CertificateAuthority.DefaultNodeValidity;

    /// <summary>Root of the proc filesystem, for attestation and liveness.</summary>
    public string ProcRoot { get; set; } = "/proc";

    /// <summary>Workload API: open connections in total; more are closed at accept. Default: 1024.</summary>
    public int WorkloadApiMaxConnections { get; set; } = 1024;

    /// <summary>Workload API: open connections per calling process; more are closed at accept. Default: 32.
    /// The other Workload API limits (16 streams per connection, 64 KiB messages, 16 KiB headers,
    /// 2 min idle timeout) are the defaults of <see cref="Beemesh.Identity.WorkloadApi.WorkloadApiServerOptions"/>.</summary>
    public int WorkloadApiMaxConnectionsPerProcess { get; set; } = 32;

    /// <summary>Admin API: open connections in total; more get 429 and are closed. Default: 256.</summary>
    public int AdminMaxConnections { get; set; } = 256;

    /// <summary>Admin API: open connections per calling process; more get 429 and are closed. Default: 16.</summary>
    public int AdminMaxConnectionsPerProcess { get; set; } = 16;

    /// <summary>Admin API: largest request body; larger ones get 413. Default: 1 MiB.</summary>
    public int AdminMaxBodyBytes { get; set; } = 1 << 20;

    /// <summary>Most policies stored at once; an apply that would exceed it gets 413 and changes nothing. Default: 1000.</summary>
    public int MaxPolicies { get; set; } = 1000;

    /// <summary>Most policy text (YAML) stored at once, in bytes; an apply that would exceed it gets 413. Default: 4 MiB.</summary>
    public int MaxPolicyBytes { get; set; } = 4 << 20;
}
