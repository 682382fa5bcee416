namespace Beemesh.Identity.Join;

/// <summary>Why a string is not a join token (<see cref="JoinToken.TryParse"/>).</summary>
public enum JoinTokenError
{
    /// <summary>The string parsed.</summary>
    None = 0,

    /// <summary>The string is empty or only whitespace.</summary>
    Empty,

    /// <summary>The string does not start with <c>bmt1.</c> (another format or version).</summary>
    UnknownFormat,

    /// <summary>The string does not have four dot-separated fields.</summary>
    WrongFieldCount,

    /// <summary>The token id is not 8 characters of <c>a-z2-7</c>.</summary>
    BadId,

    /// <summary>The secret is not 26 characters of <c>a-z2-7</c>.</summary>
    BadSecret,

    /// <summary>The last field is not <c>sha256-</c> followed by 64 lowercase hex digits.</summary>
    BadFingerprint,
}
