using Beemesh.Spiffe;

namespace Beemesh.Identity.Authority;

/// <summary>
/// Node names and the node SPIFFE IDs built from them. A node name is a DNS-1123 label (RFC 1123
/// §2.1, as Kubernetes node names): 1 to 63 characters of <c>a-z</c>, <c>0-9</c> and <c>-</c>,
/// starting and ending with a letter or digit. The path <c>/node/</c> of a trust domain is reserved
/// for node SVIDs <c>spiffe://TD/node/N</c>.
/// </summary>
public static class NodeNames
{
    /// <summary>Longest node name (a DNS label).</summary>
    public const int MaxLength = 63;

    /// <summary>The path prefix of node SVIDs.</summary>
    public const string PathPrefix = "/node/";

    /// <summary>True when <paramref name="name"/> is a DNS-1123 label.</summary>
    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.Length is 0 or > MaxLength || name[0] == '-' || name[^1] == '-')
        {
            return false;
        }

        foreach (char c in name)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Null when <paramref name="name"/> is a valid node name, otherwise why not, in one line.</summary>
    public static string? Check(string? name) =>
        name is null || name.Length == 0 ? "the node name is empty"
        : IsValid(name) ? null
        : $"node name '{name}' is not a DNS-1123 label (1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)";

    /// <summary>The node SPIFFE ID <c>spiffe://trustDomain/node/name</c>; throws <see cref="ArgumentException"/> for a bad name.</summary>
    public static SpiffeId ToSpiffeId(string trustDomain, string name)
    {
        string? error = Check(name);
        if (error is not null)
        {
            throw new ArgumentException(error, nameof(name));
        }

        return SpiffeId.FromParts(trustDomain, PathPrefix + name);
    }

    /// <summary>The node name of a node SPIFFE ID (<c>/node/N</c> with N a valid name), or null.</summary>
    public static string? FromSpiffeId(SpiffeId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!id.Path.StartsWith(PathPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        string name = id.Path[PathPrefix.Length..];
        return IsValid(name) ? name : null;
    }

    /// <summary>True for <c>/node</c> and every path under <c>/node/</c>: workload SVIDs may not use them.</summary>
    public static bool IsReservedPath(string path) =>
        path == PathPrefix[..^1] || path.StartsWith(PathPrefix, StringComparison.Ordinal);
}
