namespace Beemesh.Agent.Workloads;

/// <summary>
/// Whether a process shares the agent's network namespace, read from <c>/proc/PID/ns/net</c>
/// (a link such as <c>net:[4026531840]</c>; see namespaces(7)). A sidecar in another network
/// namespace (a pod's) listens on a loopback that neither the agent nor this node's other sidecars
/// can reach, so its connections come through the agent's tunnel port as descriptors.
/// </summary>
internal static class NetworkNamespaces
{
    /// <summary>
    /// True when both processes' network namespaces can be read and differ; false when they are the
    /// same or either cannot be read (the process has gone, or the proc file system does not say):
    /// the registration then stays as the sidecar gave it.
    /// </summary>
    public static bool Differ(string procRoot, int pid, int otherPid)
    {
        string? a = Of(procRoot, pid);
        string? b = Of(procRoot, otherPid);
        return a is not null && b is not null && !string.Equals(a, b, StringComparison.Ordinal);
    }

    /// <summary>The link text of <paramref name="pid"/>'s network namespace, or null when it cannot be read.</summary>
    public static string? Of(string procRoot, int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        try
        {
            string? target = new FileInfo(Path.Combine(procRoot, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "ns", "net")).LinkTarget;
            return target is not null && target.StartsWith("net:[", StringComparison.Ordinal) ? target : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
