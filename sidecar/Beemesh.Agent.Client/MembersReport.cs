namespace Beemesh.Agent.Client;

/// <summary>Answer of <c>GET /v1/members</c>: this node's overlay views and every node it knows of.</summary>
public sealed class MembersReport
{
    /// <summary>This node's name.</summary>
    public string Node { get; set; } = string.Empty;

    /// <summary>This node's overlay id (16 hex digits).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Peers with a live link (HyParView active view), by name where known.</summary>
    public List<string> Active { get; set; } = [];

    /// <summary>Candidates to refill the active view (passive view), by name where known.</summary>
    public List<string> Passive { get; set; } = [];

    /// <summary>Version (HLC@origin) of the mesh policy set this node applied; null before any.</summary>
    public string? PolicyVersion { get; set; }

    /// <summary>Every node whose node record this node holds or held.</summary>
    public List<MemberNode> Nodes { get; set; } = [];

    /// <summary>When this node's certificates (node SVID; on a joined node also its node CA) expire.</summary>
    public DateTimeOffset? NodeCertificateExpires { get; set; }

    /// <summary>When this node renews them next (2/3 of their lifetime, or the retry after a failed renewal).</summary>
    public DateTimeOffset? NodeCertificateRenews { get; set; }

    /// <summary>Renewals since the agent started.</summary>
    public long NodeCertificateRenewals { get; set; }

    /// <summary>Why the last renewal attempt failed; null when it succeeded or none was due yet.</summary>
    public string? NodeCertificateRenewalError { get; set; }

    /// <summary>
    /// The overlay's change version this report was built at; <c>GET /v1/members/watch?since=</c> it
    /// answers at the next change.
    /// </summary>
    public long ChangeVersion { get; set; }

    /// <summary>Names of the nodes revoked (<c>beemesh node remove</c>); their links, records and routes are refused.</summary>
    public List<string> Revoked { get; set; } = [];
}
