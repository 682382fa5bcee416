using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// This node's identity among nodes: its name and its node SVID <c>spiffe://TD/node/N</c> (with its
/// private key), signed by the trust domain's root. A joined node has it from the join; the first node
/// issues one from its root at start.
/// </summary>
public sealed class NodeIdentity : IDisposable
{
    private NodeIdentity(string nodeName, string trustDomain, X509Certificate2 root, X509Certificate2 svid)
    {
        NodeName = nodeName;
        TrustDomain = trustDomain;
        Root = root;
        Svid = svid;
        Context = SslStreamCertificateContext.Create(svid, additionalCertificates: null, offline: true);
    }

    /// <summary>The node's name (a DNS label).</summary>
    public string NodeName { get; }

    /// <summary>The trust domain.</summary>
    public string TrustDomain { get; }

    /// <summary>The trust domain's root certificate.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>The node SVID, with its private key.</summary>
    public X509Certificate2 Svid { get; }

    /// <summary>The TLS certificate context presenting <see cref="Svid"/>.</summary>
    public SslStreamCertificateContext Context { get; }

    /// <summary>The identity of a joined node, from its saved credentials.</summary>
    public static NodeIdentity FromCredentials(NodeCredentials credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return new NodeIdentity(
            credentials.NodeName,
            credentials.TrustDomain,
            X509CertificateLoader.LoadCertificate(credentials.Root.RawData),
            X509CertificateLoader.LoadPkcs12(credentials.NodeSvid.Export(X509ContentType.Pkcs12), null));
    }

    /// <summary>The identity of the first node: a node SVID for a fresh key, signed by <paramref name="authority"/>'s root.</summary>
    public static NodeIdentity IssueFromRoot(CertificateAuthority authority, string nodeName)
    {
        ArgumentNullException.ThrowIfNull(authority);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 issued = authority.IssueNodeSvid(nodeName, new PublicKey(key));
        using X509Certificate2 withKey = issued.CopyWithPrivateKey(key);
        // Round-trip through PKCS#12 so the key is usable by the platform's TLS on every runtime.
        return new NodeIdentity(
            nodeName,
            authority.TrustDomain,
            X509CertificateLoader.LoadCertificate(authority.Root.RawData),
            X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Svid.Dispose();
        Root.Dispose();
    }
}
