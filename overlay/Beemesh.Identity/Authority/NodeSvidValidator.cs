using System.Security.Cryptography.X509Certificates;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Authority;

/// <summary>
/// Accepts a certificate as a node's identity. A node CA may sign any SPIFFE ID of its trust domain
/// (a URI name constraint can only pin the host), so a node SVID <c>spiffe://TD/node/N</c> counts only
/// when the root signed it directly: the path leaf → root, with no intermediate. Anything a node CA
/// signed is a workload SVID, whatever its path says.
/// </summary>
public static class NodeSvidValidator
{
    /// <summary>
    /// Validates <paramref name="leaf"/> as an X509-SVID of <paramref name="trustDomain"/> signed directly
    /// by a root of <paramref name="trustBundle"/> and naming a node. Returns the node name, or null with
    /// <paramref name="error"/> saying why not in one line.
    /// </summary>
    public static string? Validate(X509Certificate2 leaf, X509Certificate2Collection trustBundle, string trustDomain, DateTimeOffset now, out string? error)
    {
        ArgumentNullException.ThrowIfNull(leaf);
        ArgumentNullException.ThrowIfNull(trustBundle);
        // No intermediates offered: only a path straight to a root can build.
        SvidValidationResult result = SvidValidator.Validate(leaf, intermediates: null, trustBundle, trustDomain, now, out SpiffeId? id);
        if (result != SvidValidationResult.Valid)
        {
            error = result == SvidValidationResult.UntrustedChain
                ? "the certificate is not a node SVID signed by the trust domain's root"
                : $"the certificate is not a valid SVID of {trustDomain} ({result})";
            return null;
        }

        string? name = NodeNames.FromSpiffeId(id!);
        error = name is null ? $"{id} is not a node ID (spiffe://{trustDomain}/node/NAME)" : null;
        return name;
    }
}
