using System.Security.Cryptography.X509Certificates;

namespace Beemesh.Spiffe.X509;

/// <summary>
/// One X.509-SVID as delivered by the Workload API: the leaf (with its private key), any
/// intermediates, and the SPIFFE ID it certifies.
/// </summary>
/// <param name="Id">The SPIFFE ID in the leaf's URI SAN.</param>
/// <param name="Certificate">The leaf certificate, carrying its private key.</param>
/// <param name="Intermediates">Certificates between the leaf and a bundle root (often empty).</param>
/// <param name="Hint">Operator hint from the Workload API, or empty.</param>
public sealed record X509Svid(SpiffeId Id, X509Certificate2 Certificate, X509Certificate2Collection Intermediates, string Hint);
