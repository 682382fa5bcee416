namespace Beemesh.Agent.Client;

/// <summary>
/// The TLS server name (SNI) a caller's sidecar sends to another node's tunnel port to reach a
/// workload there: <c>NAME.NAMESPACE.TRUST-DOMAIN</c>, or <c>REPLICA.NAME.NAMESPACE.TRUST-DOMAIN</c>
/// for one replica of the name (its workload id on that node, such as <c>w3</c>), in lower case
/// (workload names, namespaces and ids are DNS labels, a trust domain is a DNS name). The node's
/// tunnel router maps it to that workload's sidecar; the name is routing only, identity is checked
/// by mTLS end to end (every replica of a name holds the same identity).
/// </summary>
public static class TunnelServerName
{
    /// <summary>The server name for workload <paramref name="name"/> in <paramref name="ns"/> of <paramref name="trustDomain"/>.</summary>
    public static string For(string name, string ns, string trustDomain) =>
        $"{name}.{ns}.{trustDomain}".ToLowerInvariant();

    /// <summary>
    /// The server name for replica <paramref name="replica"/> (a workload id of the node that runs it)
    /// of workload <paramref name="name"/> in <paramref name="ns"/>; the name-only form
    /// (<see cref="For(string, string, string)"/>) when <paramref name="replica"/> is not a valid id.
    /// </summary>
    public static string For(string name, string ns, string trustDomain, string? replica) =>
        IsReplicaId(replica) ? $"{replica}.{name}.{ns}.{trustDomain}".ToLowerInvariant() : For(name, ns, trustDomain);

    /// <summary>
    /// Whether <paramref name="replica"/> has the form of a workload id (<c>w</c> and 1 to 18 digits),
    /// which is what a replica label may hold.
    /// </summary>
    public static bool IsReplicaId(string? replica)
    {
        if (replica is null || replica.Length < 2 || replica.Length > 19 || (replica[0] != 'w' && replica[0] != 'W'))
        {
            return false;
        }

        foreach (char c in replica.AsSpan(1))
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Splits <paramref name="serverName"/> into a workload name and namespace when it ends with
    /// <c>.</c><paramref name="trustDomain"/> and has exactly two labels before it.
    /// </summary>
    public static bool TryParse(string serverName, string trustDomain, out string name, out string ns) =>
        TryParse(serverName, trustDomain, out name, out ns, out string? replica) && replica is null;

    /// <summary>
    /// Splits <paramref name="serverName"/> into a workload name, namespace and, in the replica form,
    /// the replica's workload id (else null) when it ends with <c>.</c><paramref name="trustDomain"/>
    /// and has two labels before it, or three whose first is a workload id.
    /// </summary>
    public static bool TryParse(string serverName, string trustDomain, out string name, out string ns, out string? replica)
    {
        ArgumentNullException.ThrowIfNull(serverName);
        ArgumentNullException.ThrowIfNull(trustDomain);
        name = ns = string.Empty;
        replica = null;
        string suffix = "." + trustDomain.ToLowerInvariant();
        string s = serverName.ToLowerInvariant();
        if (!s.EndsWith(suffix, StringComparison.Ordinal))
        {
            return false;
        }

        string[] parts = s[..^suffix.Length].Split('.');
        if (parts.Length == 3 && IsReplicaId(parts[0]))
        {
            replica = parts[0];
            parts = parts[1..];
        }

        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            replica = null;
            return false;
        }

        name = parts[0];
        ns = parts[1];
        return true;
    }
}
