namespace Beemesh.Agent.Client;

/// <summary>One connection a sidecar is carrying, as it reports it.</summary>
public sealed class LiveConnection
{
    /// <summary>The peer's SPIFFE ID (or address when it has none).</summary>
    public string Peer { get; set; } = string.Empty;

    /// <summary>The workload port the connection reaches.</summary>
    public int Port { get; set; }

    /// <summary><c>inbound</c> or <c>outbound</c>.</summary>
    public string Direction { get; set; } = "inbound";

    /// <summary>The policy that allowed it (<c>namespace/name</c>), empty when allowed by default.</summary>
    public string Policy { get; set; } = string.Empty;

    /// <summary>Index of the matching rule in that policy; -1 when none.</summary>
    public int Rule { get; set; } = -1;
}
