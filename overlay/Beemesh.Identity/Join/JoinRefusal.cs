namespace Beemesh.Identity.Join;

/// <summary>
/// Why a join did not succeed, on either side. Sent on the wire by name (<see cref="JoinMessage.Code"/>);
/// append-only.
/// </summary>
public enum JoinRefusal
{
    /// <summary>No token with the presented id exists on the server.</summary>
    UnknownToken = 1,

    /// <summary>The token has expired.</summary>
    ExpiredToken,

    /// <summary>The token was already used by a node.</summary>
    UsedToken,

    /// <summary>The proof does not match the token's secret.</summary>
    BadSecret,

    /// <summary>Another node already joined with this name.</summary>
    NameTaken,

    /// <summary>The node name is not a DNS-1123 label.</summary>
    BadName,

    /// <summary>The request is malformed (bad framing, JSON, field or certificate signing request).</summary>
    BadRequest,

    /// <summary>The server's root is not the one whose fingerprint the token carries.</summary>
    RootMismatch,

    /// <summary>The server's certificate is not a node identity issued by that root.</summary>
    ServerIdentity,

    /// <summary>No endpoint could be reached, or the TLS handshake failed.</summary>
    Unreachable,

    /// <summary>The server failed while issuing (its log says why).</summary>
    ServerError,

    /// <summary>A renewal without a current, unexpired node SVID of the trust domain as client certificate.</summary>
    NotANode,

    /// <summary>A renewal by a node that was removed (revoked).</summary>
    Revoked,

    /// <summary>A renewal for another node name than the one of the client certificate.</summary>
    NameMismatch,
}
