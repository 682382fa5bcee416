using System.Diagnostics.CodeAnalysis;

namespace Beemesh.Spiffe;

/// <summary>
/// A SPIFFE ID (<c>spiffe://trust-domain/path</c>) checked against the SPIFFE-ID standard:
/// lowercase trust domain of <c>[a-z0-9.-_]</c>, path segments of <c>[A-Za-z0-9.-_]</c>, no empty,
/// <c>.</c> or <c>..</c> segment, no trailing slash, no port, user info, query or fragment,
/// at most 2048 bytes.
/// </summary>
public sealed record SpiffeId
{
    private const string Scheme = "spiffe://";
    private const int MaxLength = 2048;

    private SpiffeId(string trustDomain, string path)
    {
        TrustDomain = trustDomain;
        Path = path;
    }

    /// <summary>The trust domain name, e.g. <c>example.org</c>.</summary>
    public string TrustDomain { get; }

    /// <summary>The path, empty or starting with <c>/</c>, e.g. <c>/ns/default/sa/web</c>.</summary>
    public string Path { get; }

    /// <summary>The trust domain's own SPIFFE ID, <c>spiffe://trust-domain</c>, the key of bundle maps.</summary>
    public string TrustDomainId => Scheme + TrustDomain;

    /// <summary>Parses <paramref name="text"/>; returns false for anything the standard forbids.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out SpiffeId? id)
    {
        id = null;
        if (text is null || text.Length > MaxLength || !text.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return false;
        }

        ReadOnlySpan<char> rest = text.AsSpan(Scheme.Length);
        int slash = rest.IndexOf('/');
        ReadOnlySpan<char> td = slash < 0 ? rest : rest[..slash];
        ReadOnlySpan<char> path = slash < 0 ? [] : rest[slash..];
        if (!IsValidTrustDomain(td) || !IsValidPath(path))
        {
            return false;
        }

        id = new SpiffeId(td.ToString(), path.ToString());
        return true;
    }

    /// <summary>Parses <paramref name="text"/> or throws <see cref="FormatException"/>.</summary>
    public static SpiffeId Parse(string text) =>
        TryParse(text, out SpiffeId? id) ? id : throw new FormatException($"'{text}' is not a valid SPIFFE ID.");

    /// <summary>Builds the ID <c>spiffe://trustDomain/path</c> after validating both parts.</summary>
    public static SpiffeId FromParts(string trustDomain, string path) =>
        Parse(Scheme + trustDomain + (path.Length == 0 || path[0] == '/' ? path : "/" + path));

    /// <summary>True when <paramref name="trustDomain"/> is a valid trust domain name.</summary>
    public static bool IsValidTrustDomain(ReadOnlySpan<char> trustDomain)
    {
        if (trustDomain.IsEmpty)
        {
            return false;
        }

        foreach (char c in trustDomain)
        {
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsValidPath(ReadOnlySpan<char> path)
    {
        if (path.IsEmpty)
        {
            return true;
        }

        // path is "/seg/seg": every segment non-empty, not a dot segment, only the allowed characters.
        foreach (Range r in path[1..].Split('/'))
        {
            ReadOnlySpan<char> segment = path[1..][r];
            if (segment.IsEmpty || segment is "." || segment is "..")
            {
                return false;
            }

            foreach (char c in segment)
            {
                if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '-' or '_'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>The canonical text form, <c>spiffe://trust-domain/path</c>.</summary>
    public override string ToString() => Scheme + TrustDomain + Path;
}
