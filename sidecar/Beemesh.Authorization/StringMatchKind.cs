namespace Beemesh.Authorization;

/// <summary>How a <see cref="StringMatch"/> compares its value with a request attribute.</summary>
public enum StringMatchKind
{
    /// <summary>The attribute equals the value.</summary>
    Exact,

    /// <summary>Written <c>abc*</c>: the attribute starts with the value.</summary>
    Prefix,

    /// <summary>Written <c>*abc</c>: the attribute ends with the value.</summary>
    Suffix,

    /// <summary>Written <c>*</c>: the attribute is present and not empty.</summary>
    Presence,
}
