namespace Beemesh.Authorization;

/// <summary>
/// One value of a policy string field (principals, namespaces, methods, paths, hosts, condition values),
/// compiled once at load time so that matching allocates nothing. Istio's value matching: exact,
/// prefix (<c>abc*</c>), suffix (<c>*abc</c>) and presence (<c>*</c>, "anything but empty").
/// </summary>
public readonly record struct StringMatch
{
    private StringMatch(StringMatchKind kind, string value, string text)
    {
        Kind = kind;
        Value = value;
        Text = text;
    }

    /// <summary>How the value is compared.</summary>
    public StringMatchKind Kind { get; }

    /// <summary>The value without its <c>*</c> (empty for <see cref="StringMatchKind.Presence"/>).</summary>
    public string Value { get; }

    /// <summary>The value as written in the policy.</summary>
    public string Text { get; }

    /// <summary>
    /// Compiles <paramref name="text"/>. A <c>*</c> is allowed only alone, first or last: Istio gives
    /// a <c>*</c> in the middle no meaning, so it is refused rather than silently matched literally.
    /// </summary>
    /// <param name="text">The value as written in the policy.</param>
    /// <param name="match">The compiled matcher when this returns true.</param>
    /// <param name="error">Why the value is refused when this returns false.</param>
    public static bool TryParse(string text, out StringMatch match, out string? error)
    {
        match = default;
        if (text.Length == 0)
        {
            error = "empty value (use \"*\" to require a non-empty value)";
            return false;
        }

        if (text == "*")
        {
            match = new StringMatch(StringMatchKind.Presence, string.Empty, text);
            error = null;
            return true;
        }

        StringMatchKind kind;
        string value;
        if (text[^1] == '*')
        {
            kind = StringMatchKind.Prefix;
            value = text[..^1];
        }
        else if (text[0] == '*')
        {
            kind = StringMatchKind.Suffix;
            value = text[1..];
        }
        else
        {
            kind = StringMatchKind.Exact;
            value = text;
        }

        if (value.Contains('*', StringComparison.Ordinal))
        {
            error = $"\"{text}\": '*' is allowed only alone, at the start or at the end";
            return false;
        }

        match = new StringMatch(kind, value, text);
        error = null;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="attribute"/> matches. A null attribute (absent, e.g. no peer principal on a
    /// plain-text connection) matches nothing, not even a prefix of "".
    /// </summary>
    /// <param name="attribute">The request attribute.</param>
    /// <param name="comparison">Ordinal for most fields; OrdinalIgnoreCase for hosts.</param>
    public bool Matches(string? attribute, StringComparison comparison = StringComparison.Ordinal)
    {
        if (attribute is null)
        {
            return false;
        }

        return Kind switch
        {
            StringMatchKind.Exact => string.Equals(attribute, Value, comparison),
            StringMatchKind.Prefix => attribute.StartsWith(Value, comparison),
            StringMatchKind.Suffix => attribute.EndsWith(Value, comparison),
            _ => attribute.Length != 0,
        };
    }

    /// <summary>The value as written in the policy.</summary>
    public override string ToString() => Text;
}
