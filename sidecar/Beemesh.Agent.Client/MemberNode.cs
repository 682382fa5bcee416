namespace Beemesh.Agent.Client;

/// <summary>One node of the mesh as seen from this node.</summary>
public sealed class MemberNode
{
    /// <summary>Node name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Overlay id (16 hex digits).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary><c>alive</c> (node record held and renewed), <c>dead</c> (its lease expired) or <c>left</c> (it withdrew its record).</summary>
    public string State { get; set; } = string.Empty;

    /// <summary>The node port other nodes reach it at.</summary>
    public string? Overlay { get; set; }

    /// <summary>Its tunnel endpoint.</summary>
    public string? Tunnel { get; set; }

    /// <summary>Its QUIC tunnel endpoint (UDP) when it advertises QUIC (capability <c>h3</c>), else null.</summary>
    public string? Quic { get; set; }

    /// <summary>The block of the mesh CIDR its workloads' addresses come from.</summary>
    public string? MeshBlock { get; set; }

    /// <summary>Version (HLC@origin) of its node record.</summary>
    public string Version { get; set; } = string.Empty;

    /// <summary>Records this node holds that it originated.</summary>
    public int Records { get; set; }

    /// <summary>Newest version among those records.</summary>
    public string NewestVersion { get; set; } = string.Empty;
}
