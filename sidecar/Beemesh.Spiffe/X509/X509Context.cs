using System.Security.Cryptography.X509Certificates;

namespace Beemesh.Spiffe.X509;

/// <summary>
/// The full X.509 state of a workload at one moment: every message of the FetchX509SVID stream
/// carries all of it, so a new context replaces the old one wholesale.
/// </summary>
/// <param name="Svids">The SVIDs the workload is entitled to; the first is the default.</param>
/// <param name="Bundles">Root certificates keyed by trust domain name (<c>example.org</c>), own and federated.</param>
public sealed record X509Context(IReadOnlyList<X509Svid> Svids, IReadOnlyDictionary<string, X509Certificate2Collection> Bundles)
{
    /// <summary>The default SVID (the first one the server sent).</summary>
    public X509Svid DefaultSvid => Svids[0];

    /// <summary>Returns the roots for <paramref name="trustDomain"/>, or an empty collection when unknown.</summary>
    public X509Certificate2Collection BundleFor(string trustDomain) =>
        Bundles.TryGetValue(trustDomain, out X509Certificate2Collection? roots) ? roots : [];
}
