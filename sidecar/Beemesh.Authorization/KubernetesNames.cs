namespace Beemesh.Authorization;

/// <summary>
/// Name rules as Kubernetes defines them: workload names and namespaces are DNS-1123 labels,
/// policy names DNS-1123 subdomains. Names travel in URLs, SPIFFE IDs, DNS answers and log lines,
/// so anything else (a '/', a newline, invalid UTF-8, upper case) is refused with the rule quoted.
/// </summary>
public static class KubernetesNames
{
    /// <summary>Longest DNS-1123 label.</summary>
    public const int MaxLabelLength = 63;

    /// <summary>Longest DNS-1123 subdomain.</summary>
    public const int MaxSubdomainLength = 253;

    /// <summary>The label rule, as quoted in refusals.</summary>
    public const string LabelRule =
        "a DNS-1123 label: at most 63 characters, lowercase letters, digits and '-', starting and ending with a letter or digit (regex [a-z0-9]([-a-z0-9]*[a-z0-9])?)";

    /// <summary>The subdomain rule, as quoted in refusals.</summary>
    public const string SubdomainRule =
        "a DNS-1123 subdomain: at most 253 characters, dot-separated parts of lowercase letters, digits and '-', each starting and ending with a letter or digit (regex [a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)";

    /// <summary>True when <paramref name="name"/> is a DNS-1123 label.</summary>
    public static bool IsLabel(string? name) => name is { Length: > 0 and <= MaxLabelLength } && IsLabelPart(name);

    /// <summary>True when <paramref name="name"/> is a DNS-1123 subdomain.</summary>
    public static bool IsSubdomain(string? name)
    {
        if (name is not { Length: > 0 and <= MaxSubdomainLength })
        {
            return false;
        }

        foreach (Range range in name.AsSpan().Split('.'))
        {
            if (!IsLabelPart(name.AsSpan()[range]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Null when <paramref name="name"/> is a valid workload name or namespace, else the refusal: "FIELD "NAME" must be a DNS-1123 label: ...".</summary>
    public static string? CheckLabel(string field, string? name) =>
        IsLabel(name) ? null : $"{field} {Quote(name)} is invalid: it must be {LabelRule}";

    /// <summary>Null when <paramref name="name"/> is a valid policy name, else the refusal with the rule quoted.</summary>
    public static string? CheckSubdomain(string field, string? name) =>
        IsSubdomain(name) ? null : $"{field} {Quote(name)} is invalid: it must be {SubdomainRule}";

    private static bool IsLabelPart(ReadOnlySpan<char> part)
    {
        if (part.IsEmpty || part.Length > MaxLabelLength || part[0] == '-' || part[^1] == '-')
        {
            return false;
        }

        foreach (char c in part)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                return false;
            }
        }

        return true;
    }

    // Shown escaped and shortened, so a hostile name cannot break the one-line error it appears in.
    private static string Quote(string? name)
    {
        if (name is null)
        {
            return "(missing)";
        }

        var text = new System.Text.StringBuilder("\"");
        foreach (char c in name.Length > 80 ? name[..80] : name)
        {
            if (c is < ' ' or '"' or '\\' or > '~')
            {
                text.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                text.Append(c);
            }
        }

        return text.Append(name.Length > 80 ? "...\"" : "\"").ToString();
    }
}
