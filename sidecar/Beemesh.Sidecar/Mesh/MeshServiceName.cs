using Beemesh.Authorization;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The forms of a mesh service's DNS name a pod's resolver answers, as Kubernetes' cluster DNS
/// does: <c>NAME.NAMESPACE.svc.cluster.local</c>, <c>NAME.NAMESPACE.svc</c>, <c>NAME.NAMESPACE</c>,
/// and <c>NAME</c> alone for a service of the pod's own namespace. Case-insensitive; a trailing dot
/// is allowed.
/// </summary>
public static class MeshServiceName
{
    private const string ClusterSuffix = ".svc.cluster.local";
    private const string SvcSuffix = ".svc";

    /// <summary>
    /// The service <c>NAME.NAMESPACE</c> (lower case) that the DNS name <paramref name="dnsName"/> asks
    /// for, or null when it is not one of the forms (or its labels are not DNS-1123 labels).
    /// </summary>
    public static string? Parse(string dnsName, string podNamespace)
    {
        ArgumentNullException.ThrowIfNull(dnsName);
        string name = dnsName.EndsWith('.') ? dnsName[..^1] : dnsName;
        name = name.ToLowerInvariant();
        if (name.EndsWith(ClusterSuffix, StringComparison.Ordinal))
        {
            name = name[..^ClusterSuffix.Length];
        }
        else if (name.EndsWith(SvcSuffix, StringComparison.Ordinal) && name.Count(c => c == '.') == 2)
        {
            name = name[..^SvcSuffix.Length];
        }

        string[] labels = name.Split('.');
        if (labels.Length == 1)
        {
            labels = [labels[0], podNamespace];
        }

        if (labels.Length != 2 || !KubernetesNames.IsLabel(labels[0]) || !KubernetesNames.IsLabel(labels[1]))
        {
            return null;
        }

        return $"{labels[0]}.{labels[1]}";
    }
}
