using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// This node's identity among nodes: its name and its node SVID <c>spiffe://TD/node/N</c> (with its
/// private key), signed by the trust domain's root. A joined node has it from the join; the first node
/// issues one from its root and keeps it in its state directory (<see cref="RootNodeSvidStore"/>).
/// A renewal (<see cref="Replace"/>) swaps in a new node SVID: new links and new records use it, live
/// links keep the one they were opened with. Thread-safe.
/// </summary>
public sealed class NodeIdentity : IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<X509Certificate2> _retired = [];
    private volatile Current _current;

    private NodeIdentity(string nodeName, string trustDomain, X509Certificate2 root, X509Certificate2 svid)
    {
        NodeName = nodeName;
        TrustDomain = trustDomain;
        Root = root;
        _current = new Current(svid, SslStreamCertificateContext.Create(svid, additionalCertificates: null, offline: true));
    }

    private sealed record Current(X509Certificate2 Svid, SslStreamCertificateContext Context);

    /// <summary>The node's name (a DNS label).</summary>
    public string NodeName { get; }

    /// <summary>The trust domain.</summary>
    public string TrustDomain { get; }

    /// <summary>The trust domain's root certificate.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>The current node SVID, with its private key.</summary>
    public X509Certificate2 Svid => _current.Svid;

    /// <summary>The TLS certificate context presenting the current <see cref="Svid"/>.</summary>
    public SslStreamCertificateContext Context => _current.Context;

    /// <summary>Raised after <see cref="Replace"/> with the new node SVID (with its private key).</summary>
    public event Action<X509Certificate2>? Renewed;

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
    public static NodeIdentity IssueFromRoot(CertificateAuthority authority, string nodeName, TimeSpan? validity = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        return new NodeIdentity(nodeName, authority.TrustDomain, X509CertificateLoader.LoadCertificate(authority.Root.RawData), IssueSvid(authority, nodeName, validity));
    }

    /// <summary>
    /// The identity of the first node, reusing the node SVID saved in <paramref name="stateDirectory"/>
    /// while it is valid and not yet due for renewal (<paramref name="renewAfter"/> of its lifetime);
    /// otherwise a new one is issued from the root and saved. <paramref name="reason"/> says why a saved
    /// one was not reused (null when it was, or when there was none).
    /// </summary>
    public static NodeIdentity LoadOrIssueFromRoot(
        CertificateAuthority authority, string nodeName, string stateDirectory, DateTimeOffset now, double renewAfter, TimeSpan? validity, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(authority);
        X509Certificate2? saved = RootNodeSvidStore.Load(stateDirectory, authority, nodeName, now, out reason);
        if (saved is not null && now >= NodeCertificateLifetime.RenewalTime(saved, renewAfter))
        {
            reason = $"the saved node SVID is due for renewal since {NodeCertificateLifetime.RenewalTime(saved, renewAfter):u}";
            saved.Dispose();
            saved = null;
        }

        if (saved is null)
        {
            saved = IssueSvid(authority, nodeName, validity);
            RootNodeSvidStore.Save(stateDirectory, saved);
        }

        return new NodeIdentity(nodeName, authority.TrustDomain, X509CertificateLoader.LoadCertificate(authority.Root.RawData), saved);
    }

    /// <summary>A new node SVID (new key) for <paramref name="nodeName"/> from <paramref name="authority"/>'s root, with its private key.</summary>
    public static X509Certificate2 IssueSvid(CertificateAuthority authority, string nodeName, TimeSpan? validity = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 issued = authority.IssueNodeSvid(nodeName, new PublicKey(key), validity);
        using X509Certificate2 withKey = issued.CopyWithPrivateKey(key);
        // Round-trip through PKCS#12 so the key is usable by the platform's TLS on every runtime.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// Starts presenting <paramref name="svid"/> (a renewed node SVID of this node, with its private key;
    /// the identity takes a copy) and raises <see cref="Renewed"/>. The previous one is kept until disposal,
    /// as live links may still use it.
    /// </summary>
    public void Replace(X509Certificate2 svid)
    {
        ArgumentNullException.ThrowIfNull(svid);
        if (NodeSvidValidator.Validate(svid, [Root], TrustDomain, new DateTimeOffset(svid.NotBefore.ToUniversalTime()).AddSeconds(1), out string? error) != NodeName)
        {
            throw new ArgumentException($"not a node SVID of {NodeName}: {error}", nameof(svid));
        }

        X509Certificate2 copy = X509CertificateLoader.LoadPkcs12(svid.Export(X509ContentType.Pkcs12), null);
        var next = new Current(copy, SslStreamCertificateContext.Create(copy, additionalCertificates: null, offline: true));
        lock (_gate)
        {
            _retired.Add(_current.Svid);
            _current = next;
        }

        Renewed?.Invoke(copy);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (X509Certificate2 old in _retired)
            {
                old.Dispose();
            }

            _retired.Clear();
            _current.Svid.Dispose();
        }

        Root.Dispose();
    }
}
