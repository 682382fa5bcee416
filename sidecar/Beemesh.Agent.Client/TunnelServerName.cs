namespace Beemesh.Agent.Client;

/// <summary>
/// The TLS server name (SNI) a caller's sidecar sends to another node's tunnel port to reach a
/// workload there: <c>NAME.NAMESPACE.TRUST-DOMAIN</c>, in lower case (workload names and
/// namespaces are DNS labels, a trust domain is a DNS name). The node's tunnel router maps it to
/// that workload's sidecar; the name is routing only, identity is checked by mTLS end to end.
/// </summary>
public static class TunnelServerName
{
    /// <summary>The server name for workload <paramref name="name"/> in <paramref name="ns"/> of <paramref name="trustDomain"/>.</summary>
    public static string For(string name, string ns, string trustDomain) =>
        $"{name}.{ns}.{trustDomain}".ToLowerInvariant();

    /// <summary>
    /// Splits <paramref name="serverName"/> into a workload name and namespace when it ends with
    /// <c>.</c><paramref name="trustDomain"/> and has exactly two labels before it.
    /// </summary>
    public static bool TryParse(string serverName, string trustDomain, out string name, out string ns)
    {
        ArgumentNullException.ThrowIfNull(serverName);
        ArgumentNullException.ThrowIfNull(trustDomain);
        name = ns = string.Empty;
        string suffix = "." + trustDomain.ToLowerInvariant();
        string s = serverName.ToLowerInvariant();
        if (!s.EndsWith(suffix, StringComparison.Ordinal))
        {
            return false;
        }

        string[] parts = s[..^suffix.Length].Split('.');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            return false;
        }

        name = parts[0];
        ns = parts[1];
        return true;
    }
}
