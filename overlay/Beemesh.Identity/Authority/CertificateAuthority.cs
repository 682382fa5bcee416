using System.Buffers.Text;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Beemesh.Spiffe;
using Beemesh.Spiffe.Jwt;

namespace Beemesh.Identity.Authority;

/// <summary>
/// The agent's development CA for one trust domain (production deployments use SPIRE instead).
/// On first start it creates an ECDSA P-256 root and a JWT signing key in a state directory and
/// reuses them on every later start, so SVIDs and bundles survive restarts. Key files are written
/// atomically (temp file + rename) with mode 0600, so a crash never leaves a half-written or
/// world-readable key. Issues X509-SVIDs following the SPIFFE X509-SVID standard and ES256
/// JWT-SVIDs following the JWT-SVID standard. Thread-safe.
/// <para>
/// Two modes. The first node of a trust domain holds the root key (<see cref="HoldsRoot"/>) and signs
/// with the root; it also issues node credentials (<see cref="IssueNodeCertificates"/>) to nodes that
/// join. A joined node holds no root key: its state directory carries the credentials it received
/// (see <see cref="NodeCredentialStore"/>) and it signs its workloads' SVIDs with its node CA, an
/// intermediate whose chain (leaf, node CA) goes out with every SVID (<see cref="Intermediates"/>)
/// while the bundle stays the root alone.
/// </para>
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    /// <summary>Trust domain used when none is configured.</summary>
    public const string DefaultTrustDomain = "example.org";

    /// <summary>File name of the root's private key (PKCS#8 PEM, mode 0600).</summary>
    public const string KeyFileName = "ca.key";

    /// <summary>File name of the root certificate (PEM).</summary>
    public const string CertificateFileName = "ca.crt";

    /// <summary>File name of the JWT signing key (PKCS#8 PEM, mode 0600).</summary>
    public const string JwtKeyFileName = "jwt.key";

    /// <summary>Default X509-SVID lifetime (SPIRE's default is also one hour).</summary>
    public static readonly TimeSpan DefaultX509SvidTtl = TimeSpan.FromHours(1);

    /// <summary>
    /// Shortest X509-SVID lifetime an agent may be configured with: SVIDs rotate at half-life, and
    /// below this a rotation would race the handshakes, the sidecars' reports and clock skew
    /// between peers (certificates are also backdated by 10 s).
    /// </summary>
    public static readonly TimeSpan MinimumX509SvidTtl = TimeSpan.FromSeconds(10);

    /// <summary>Longest X509-SVID lifetime an agent may be configured with (the root outlives it by far).</summary>
    public static readonly TimeSpan MaximumX509SvidTtl = TimeSpan.FromDays(30);

    /// <summary>Default JWT-SVID lifetime: short, because a bearer token cannot be revoked.</summary>
    public static readonly TimeSpan DefaultJwtSvidTtl = TimeSpan.FromMinutes(5);

    /// <summary>Default validity of a node CA and node SVID handed to a joining node (one year).</summary>
    public static readonly TimeSpan DefaultNodeValidity = TimeSpan.FromDays(365);

    /// <summary>Validity of a newly created root.</summary>
    public static readonly TimeSpan RootValidity = TimeSpan.FromDays(3650);

    // Leaves start slightly in the past so a peer whose clock lags a little still accepts them.
    private static readonly TimeSpan Backdate = TimeSpan.FromSeconds(10);

    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly ECDsa _jwtKey;
    private readonly string _jwtKeyId;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _gate = new();
    private readonly List<Signer> _retired = [];
    private Dictionary<string, X509Certificate2Collection> _federated = new(StringComparer.Ordinal);
    private volatile Signer _current;
    private JwtBundle _jwtBundle;
    private Dictionary<string, byte[]> _peerJwtKeys = new(StringComparer.Ordinal);

    private CertificateAuthority(string trustDomain, ECDsa signingKey, X509Certificate2 signer, X509Certificate2 root, ECDsa jwtKey, TimeProvider timeProvider, string? nodeName)
    {
        TrustDomain = trustDomain;
        Root = X509CertificateLoader.LoadCertificate(root.RawData);
        HoldsRoot = nodeName is null;
        NodeName = nodeName;
        _current = new Signer(
            signingKey,
            signer.HasPrivateKey ? signer : signer.CopyWithPrivateKey(signingKey),
            HoldsRoot ? [] : [X509CertificateLoader.LoadCertificate(signer.RawData)]);
        _jwtKey = jwtKey;
        _jwtKeyId = JwtBundle.KeyIdOf(jwtKey);
        OwnJwtBundle = new JwtBundle(new Dictionary<string, ECDsa> { [_jwtKeyId] = ECDsa.Create(jwtKey.ExportParameters(false)) });
        _jwtBundle = OwnJwtBundle;
        _timeProvider = timeProvider;
    }

    // What signs leaves: the root (first node) or the node CA (joined node), replaced when the node CA is renewed.
    private sealed record Signer(ECDsa Key, X509Certificate2 Certificate, X509Certificate2[] Intermediates);

    /// <summary>
    /// Signs <paramref name="data"/> (ECDSA P-256, SHA-256, IEEE P1363) with the trust domain's root key;
    /// only the first node, which holds it, can. Used for root-signed statements such as node revocations.
    /// </summary>
    public byte[] SignWithRoot(ReadOnlySpan<byte> data)
    {
        if (!HoldsRoot)
        {
            throw new InvalidOperationException("only the node holding the trust domain's root key can sign with it");
        }

        return _current.Key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    /// <summary>The trust domain name, e.g. <c>example.org</c>.</summary>
    public string TrustDomain { get; }

    /// <summary>The root certificate, without its private key.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>
    /// True when this CA signs with the trust domain's root (the first node); false on a joined node,
    /// which signs with its node CA.
    /// </summary>
    public bool HoldsRoot { get; }

    /// <summary>The node name of a joined node (whose node CA signs), or null when <see cref="HoldsRoot"/>.</summary>
    public string? NodeName { get; }

    /// <summary>
    /// Certificates to send after each leaf this CA issues, so a peer holding only the root can build
    /// the path: empty when <see cref="HoldsRoot"/>, otherwise the node CA.
    /// </summary>
    public X509Certificate2Collection Intermediates => [.. _current.Intermediates];

    /// <summary>
    /// The certificate this CA signs leaves with: the root on the first node, the node CA on a joined
    /// node (the current one, after a renewal). Without its private key; the caller disposes it.
    /// </summary>
    public X509Certificate2 SigningCertificate => X509CertificateLoader.LoadCertificate(_current.Certificate.RawData);

    /// <summary>
    /// Starts signing with a renewed node CA (a joined node only): <paramref name="nodeCa"/> must carry its
    /// private key, be signed by <see cref="Root"/> and name this node. Leaves issued before stay valid
    /// until they expire; new leaves carry the new node CA in <see cref="Intermediates"/>. Notifies
    /// <see cref="BundlesChanged"/> so Workload API streams send SVIDs with the new chain.
    /// </summary>
    public void ReplaceNodeCa(X509Certificate2 nodeCa)
    {
        ArgumentNullException.ThrowIfNull(nodeCa);
        if (HoldsRoot)
        {
            throw new InvalidOperationException("the node holding the root key signs with the root; it has no node CA to replace");
        }

        ECDsa key = nodeCa.GetECDsaPrivateKey() ?? throw new ArgumentException("the node CA carries no ECDSA private key", nameof(nodeCa));
        if (!SpiffeIdOf(nodeCa, out SpiffeId? id) || id!.TrustDomain != TrustDomain || NodeNames.FromSpiffeId(id) != NodeName
            || !NodeCredentialStore.IssuedBy(nodeCa, Root))
        {
            key.Dispose();
            throw new ArgumentException($"the certificate is not a node CA of node {NodeName} signed by the trust domain's root", nameof(nodeCa));
        }

        var next = new Signer(key, X509CertificateLoader.LoadPkcs12(nodeCa.Export(X509ContentType.Pkcs12), null), [X509CertificateLoader.LoadCertificate(nodeCa.RawData)]);
        lock (_gate)
        {
            _retired.Add(_current);
            _current = next;
        }

        BundlesChanged?.Invoke(this, EventArgs.Empty);
    }

    private static bool SpiffeIdOf(X509Certificate2 certificate, out SpiffeId? id) =>
        Spiffe.X509.SvidValidator.TryGetSpiffeId(certificate, out id) == Spiffe.X509.SvidValidationResult.Valid;

    /// <summary>The X.509 trust bundle of <see cref="TrustDomain"/> (currently the single root).</summary>
    public X509Certificate2Collection Bundle => [Root];

    /// <summary>
    /// The JWT bundle (public JWT signing keys) of <see cref="TrustDomain"/>: this node's key and those
    /// other nodes of the trust domain published (<see cref="SetPeerJwtKeys"/>), so a JWT-SVID minted on
    /// any live node of the mesh validates here.
    /// </summary>
    public JwtBundle JwtBundle => _jwtBundle;

    /// <summary>This node's own JWT signing key (public half), the one it publishes to other nodes.</summary>
    public JwtBundle OwnJwtBundle { get; }

    /// <summary>
    /// Sets the JWT signing keys other nodes published (key id → SubjectPublicKeyInfo DER), replacing the
    /// previous set, and notifies <see cref="BundlesChanged"/> when it changed. A key whose id is not the
    /// id of its key (<see cref="JwtBundle.KeyIdOf"/>) or that is not a P-256 key is left out. Returns
    /// the number of keys kept.
    /// </summary>
    public int SetPeerJwtKeys(IReadOnlyDictionary<string, byte[]> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var kept = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var bundle = new Dictionary<string, ECDsa> { [_jwtKeyId] = ECDsa.Create(_jwtKey.ExportParameters(false)) };
        foreach ((string kid, byte[] spki) in keys)
        {
            if (kid == _jwtKeyId)
            {
                continue;
            }

            ECDsa key = ECDsa.Create();
            try
            {
                key.ImportSubjectPublicKeyInfo(spki, out int read);
                if (read != spki.Length || key.KeySize != 256 || JwtBundle.KeyIdOf(key) != kid)
                {
                    key.Dispose();
                    continue;
                }
            }
            catch (CryptographicException)
            {
                key.Dispose();
                continue;
            }

            kept[kid] = spki;
            bundle[kid] = key;
        }

        lock (_gate)
        {
            if (kept.Count == _peerJwtKeys.Count && kept.All(k => _peerJwtKeys.TryGetValue(k.Key, out byte[]? old) && old.AsSpan().SequenceEqual(k.Value)))
            {
                foreach (ECDsa unused in bundle.Values)
                {
                    unused.Dispose();
                }

                return kept.Count;
            }

            _peerJwtKeys = kept;
            // The previous bundle may still be in a reader's hands; its keys are left to the collector.
            _jwtBundle = new JwtBundle(bundle);
        }

        BundlesChanged?.Invoke(this, EventArgs.Empty);
        return kept.Count;
    }

    /// <summary>Bundles of federated trust domains, keyed by trust domain name (a snapshot).</summary>
    public IReadOnlyDictionary<string, X509Certificate2Collection> FederatedBundles
    {
        get
        {
            lock (_gate)
            {
                return _federated;
            }
        }
    }

    /// <summary>Raised after a bundle changed, so Workload API streams can push the new state.</summary>
    public event EventHandler? BundlesChanged;

    /// <summary>
    /// Loads the CA from <paramref name="stateDirectory"/>, creating the directory (mode 0700), root
    /// and JWT key on first start. Throws <see cref="InvalidOperationException"/> when the stored root
    /// belongs to another trust domain or does not match its key.
    /// </summary>
    public static CertificateAuthority LoadOrCreate(string stateDirectory, string trustDomain = DefaultTrustDomain, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        if (!SpiffeId.IsValidTrustDomain(trustDomain))
        {
            throw new ArgumentException($"'{trustDomain}' is not a valid trust domain name.", nameof(trustDomain));
        }

        timeProvider ??= TimeProvider.System;
        Directory.CreateDirectory(stateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string keyPath = Path.Combine(stateDirectory, KeyFileName);
        string certPath = Path.Combine(stateDirectory, CertificateFileName);
        string jwtPath = Path.Combine(stateDirectory, JwtKeyFileName);
        if (NodeCredentialStore.Exists(stateDirectory))
        {
            if (File.Exists(keyPath))
            {
                throw new InvalidOperationException($"{stateDirectory} holds both a root key and the credentials of a joined node; keep one.");
            }

            return LoadJoined(stateDirectory, trustDomain, timeProvider);
        }

        ECDsa rootKey;
        X509Certificate2 root;
        if (File.Exists(keyPath) && File.Exists(certPath))
        {
            rootKey = ECDsa.Create();
            rootKey.ImportFromPem(File.ReadAllText(keyPath));
            root = X509CertificateLoader.LoadCertificateFromFile(certPath);
            using ECDsa? certKey = root.GetECDsaPublicKey();
            if (certKey is null || !certKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(rootKey.ExportSubjectPublicKeyInfo()))
            {
                throw new InvalidOperationException($"{certPath} does not match {keyPath}.");
            }

            if (Spiffe.X509.SvidValidator.TryGetSpiffeId(root, out SpiffeId? rootId) != Spiffe.X509.SvidValidationResult.Valid
                || rootId!.TrustDomain != trustDomain)
            {
                throw new InvalidOperationException($"{certPath} belongs to another trust domain than '{trustDomain}'.");
            }
        }
        else
        {
            rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            root = CreateRoot(trustDomain, rootKey, timeProvider.GetUtcNow());
            // Key first: a crash between the two writes leaves a key without a certificate, which the
            // next start replaces; never a certificate whose key is lost.
            WriteAtomically(keyPath, rootKey.ExportPkcs8PrivateKeyPem(), PrivateFileMode);
            WriteAtomically(certPath, root.ExportCertificatePem(), PrivateFileMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        return new CertificateAuthority(trustDomain, rootKey, root, root, LoadOrCreateJwtKey(jwtPath), timeProvider, nodeName: null);
    }

    /// <summary>
    /// Loads a joined node's CA from the credentials <see cref="NodeCredentialStore"/> saved in
    /// <paramref name="stateDirectory"/>. Throws <see cref="InvalidOperationException"/> when there are
    /// none, or they belong to another trust domain than <paramref name="trustDomain"/> (when given).
    /// </summary>
    public static CertificateAuthority LoadJoined(string stateDirectory, string? trustDomain = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        timeProvider ??= TimeProvider.System;
        using NodeCredentials credentials = NodeCredentialStore.Load(stateDirectory)
            ?? throw new InvalidOperationException($"{stateDirectory} holds no joined node credentials.");
        if (trustDomain is not null && credentials.TrustDomain != trustDomain)
        {
            throw new InvalidOperationException(
                $"{stateDirectory} holds the credentials of a node of trust domain '{credentials.TrustDomain}', not '{trustDomain}'.");
        }

        ECDsa key = credentials.NodeCa.GetECDsaPrivateKey()
            ?? throw new InvalidOperationException("The node CA certificate carries no ECDSA private key.");
        using X509Certificate2 signer = X509CertificateLoader.LoadCertificate(credentials.NodeCa.RawData);
        return new CertificateAuthority(
            credentials.TrustDomain, key, signer, credentials.Root, LoadOrCreateJwtKey(Path.Combine(stateDirectory, JwtKeyFileName)), timeProvider, credentials.NodeName);
    }

    /// <summary>
    /// Issues the two certificates a joining node needs, from the root (only when <see cref="HoldsRoot"/>):
    /// <list type="bullet">
    /// <item>a node CA for <paramref name="nodeCaKey"/>: an intermediate with basicConstraints CA:true and
    /// pathLenConstraint 0 (critical; it may sign leaves only), keyUsage keyCertSign+cRLSign (critical),
    /// a critical name constraint permitting URIs of host <see cref="TrustDomain"/> only (RFC 5280
    /// §4.2.1.10: a URI constraint names the host, so every SPIFFE ID it signs stays in the trust
    /// domain), and the URI SAN <c>spiffe://TD/node/N</c> that names the node it belongs to;</item>
    /// <item>a node SVID <c>spiffe://TD/node/N</c> for <paramref name="nodeSvidKey"/>, a leaf signed
    /// by the root directly. Signing it with the root rather than the node CA is what makes a node's
    /// identity unforgeable by other nodes: a node CA can sign any path of the trust domain, so a node
    /// identity is accepted only when the root signed it (<see cref="NodeSvidValidator"/>).</item>
    /// </list>
    /// Both live <paramref name="validity"/> (default <see cref="DefaultNodeValidity"/>), clipped to the root's.
    /// </summary>
    public (X509Certificate2 NodeCa, X509Certificate2 NodeSvid) IssueNodeCertificates(string nodeName, PublicKey nodeCaKey, PublicKey nodeSvidKey, TimeSpan? validity = null)
    {
        ArgumentNullException.ThrowIfNull(nodeCaKey);
        ArgumentNullException.ThrowIfNull(nodeSvidKey);
        RequireRoot();
        SpiffeId nodeId = NodeNames.ToSpiffeId(TrustDomain, nodeName);
        (DateTimeOffset notBefore, DateTimeOffset notAfter) = Window(validity ?? DefaultNodeValidity);

        byte[] serial = NewSerial();
        var request = new CertificateRequest(UniqueSubject(serial, nodeName + " node CA"), nodeCaKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(UriNameConstraint(TrustDomain));
        request.CertificateExtensions.Add(UriSan(nodeId));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Root, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        X509Certificate2 nodeCa;
        lock (_gate)
        {
            nodeCa = request.Create(_current.Certificate, notBefore, notAfter, serial);
        }

        return (nodeCa, IssueLeaf(nodeId, nodeSvidKey, notBefore, notAfter));
    }

    /// <summary>
    /// Issues a node SVID <c>spiffe://TD/node/N</c> signed by the root (only when <see cref="HoldsRoot"/>),
    /// e.g. the identity the first node presents to nodes that join it.
    /// </summary>
    public X509Certificate2 IssueNodeSvid(string nodeName, PublicKey publicKey, TimeSpan? validity = null)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        RequireRoot();
        SpiffeId nodeId = NodeNames.ToSpiffeId(TrustDomain, nodeName);
        (DateTimeOffset notBefore, DateTimeOffset notAfter) = Window(validity ?? DefaultNodeValidity);
        return IssueLeaf(nodeId, publicKey, notBefore, notAfter);
    }

    /// <summary>Null when <paramref name="ttl"/> is an acceptable configured X509-SVID lifetime; otherwise why not, in one line.</summary>
    public static string? CheckX509SvidTtl(TimeSpan ttl) =>
        ttl < MinimumX509SvidTtl ? $"the SVID lifetime must be at least {MinimumX509SvidTtl.TotalSeconds:0} s (got {ttl.TotalSeconds:0.###} s)"
        : ttl > MaximumX509SvidTtl ? $"the SVID lifetime must be at most {MaximumX509SvidTtl.TotalDays:0} days"
        : null;

    /// <summary>Issues an X509-SVID for the public half of <paramref name="key"/>.</summary>
    public X509Certificate2 IssueX509Svid(string spiffeId, ECDsa key, TimeSpan? ttl = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        var request = new CertificateRequest(new X500DistinguishedName("CN=unused"), key, HashAlgorithmName.SHA256);
        return IssueX509Svid(spiffeId, request.PublicKey, ttl);
    }

    /// <summary>
    /// Issues an X509-SVID (without private key) for <paramref name="publicKey"/>: exactly one URI SAN
    /// (<paramref name="spiffeId"/>), basicConstraints CA:false (critical), keyUsage digitalSignature
    /// (critical), extKeyUsage serverAuth+clientAuth, a random positive 128-bit serial repeated in the
    /// subject, notBefore 10 s in the past, and a validity clipped to the signer's (root or node CA).
    /// Throws <see cref="ArgumentException"/> for an invalid ID, one of another trust domain, or one
    /// under <c>/node/</c>, which is reserved for node SVIDs (<see cref="IssueNodeCertificates"/>).
    /// </summary>
    public X509Certificate2 IssueX509Svid(string spiffeId, PublicKey publicKey, TimeSpan? ttl = null) =>
        IssueX509SvidChain(spiffeId, publicKey, ttl).Svid;

    /// <summary>
    /// Issues an X509-SVID as <see cref="IssueX509Svid(string, PublicKey, TimeSpan?)"/> and returns it with the
    /// intermediates of the signer that issued it (its node CA on a joined node; none on the first node),
    /// taken together, so a renewal of the node CA in between cannot pair the leaf with the wrong chain.
    /// </summary>
    public (X509Certificate2 Svid, X509Certificate2Collection Intermediates) IssueX509SvidChain(string spiffeId, PublicKey publicKey, TimeSpan? ttl = null)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        SpiffeId id = CheckId(spiffeId);
        if (NodeNames.IsReservedPath(id.Path))
        {
            throw new ArgumentException($"'{spiffeId}' is under /node/, which is reserved for node SVIDs.", nameof(spiffeId));
        }

        TimeSpan lifetime = ttl ?? DefaultX509SvidTtl;
        if (lifetime <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ttl), "The SVID lifetime must be positive.");
        }

        Signer signer = _current;
        (DateTimeOffset notBefore, DateTimeOffset notAfter) = Window(lifetime, signer);
        return (IssueLeaf(signer, id, publicKey, notBefore, notAfter), [.. signer.Intermediates.Select(c => X509CertificateLoader.LoadCertificate(c.RawData))]);
    }

    private X509Certificate2 IssueLeaf(SpiffeId id, PublicKey publicKey, DateTimeOffset notBefore, DateTimeOffset notAfter) =>
        IssueLeaf(_current, id, publicKey, notBefore, notAfter);

    private X509Certificate2 IssueLeaf(Signer signer, SpiffeId id, PublicKey publicKey, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        byte[] serial = NewSerial();
        var request = new CertificateRequest(UniqueSubject(serial, commonName: null), publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(UriSan(id));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(signer.Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        lock (_gate)
        {
            return request.Create(signer.Certificate, notBefore, notAfter, serial);
        }
    }

    // [now - backdate, now + lifetime] clipped to the signer's validity (a node CA is itself within the root's).
    private (DateTimeOffset NotBefore, DateTimeOffset NotAfter) Window(TimeSpan lifetime, Signer? current = null)
    {
        DateTimeOffset now = _timeProvider.GetUtcNow();
        X509Certificate2 signer = (current ?? _current).Certificate;
        DateTimeOffset notBefore = Max(now - Backdate, new DateTimeOffset(signer.NotBefore.ToUniversalTime()));
        DateTimeOffset notAfter = Min(now + lifetime, new DateTimeOffset(signer.NotAfter.ToUniversalTime()));
        if (notAfter <= notBefore)
        {
            throw new InvalidOperationException(HoldsRoot
                ? "The CA root has expired; no SVID can be issued."
                : "The node CA has expired; no SVID can be issued until the node joins again.");
        }

        return (notBefore, notAfter);
    }

    private void RequireRoot()
    {
        if (!HoldsRoot)
        {
            throw new InvalidOperationException("Only the node holding the trust domain's root key issues node certificates.");
        }
    }

    private static X500DistinguishedName UniqueSubject(byte[] serial, string? commonName)
    {
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("beemesh");
        if (commonName is not null)
        {
            subject.AddCommonName(commonName);
        }

        // serialNumber (2.5.4.5) makes every subject unique, which some TLS stacks expect.
        subject.Add("2.5.4.5", Convert.ToHexString(serial), UniversalTagNumber.PrintableString);
        return subject.Build();
    }

    private static ECDsa LoadOrCreateJwtKey(string jwtPath)
    {
        var jwtKey = ECDsa.Create();
        if (File.Exists(jwtPath))
        {
            jwtKey.ImportFromPem(File.ReadAllText(jwtPath));
            return jwtKey;
        }

        jwtKey.Dispose();
        jwtKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        WriteAtomically(jwtPath, jwtKey.ExportPkcs8PrivateKeyPem(), PrivateFileMode);
        return jwtKey;
    }

    /// <summary>
    /// Issues an ES256 JWT-SVID: header alg/kid/typ, claims sub, aud (array), exp and iat.
    /// </summary>
    public string IssueJwtSvid(string spiffeId, IReadOnlyList<string> audience, TimeSpan? ttl = null)
    {
        ArgumentNullException.ThrowIfNull(audience);
        SpiffeId id = CheckId(spiffeId);
        if (audience.Count == 0)
        {
            throw new ArgumentException("A JWT-SVID needs at least one audience.", nameof(audience));
        }

        DateTimeOffset now = _timeProvider.GetUtcNow();
        string header = Base64Url.EncodeToString(Json(w =>
        {
            w.WriteString("alg", "ES256");
            w.WriteString("kid", _jwtKeyId);
            w.WriteString("typ", "JWT");
        }));
        string payload = Base64Url.EncodeToString(Json(w =>
        {
            w.WriteString("sub", id.ToString());
            w.WriteStartArray("aud");
            foreach (string a in audience)
            {
                w.WriteStringValue(a);
            }

            w.WriteEndArray();
            w.WriteNumber("exp", (now + (ttl ?? DefaultJwtSvidTtl)).ToUnixTimeSeconds());
            w.WriteNumber("iat", now.ToUnixTimeSeconds());
        }));
        string signingInput = header + "." + payload;
        byte[] signature;
        lock (_gate)
        {
            signature = _jwtKey.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }

        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    /// <summary>
    /// Sets (or, with an empty collection, removes) the bundle of a federated trust domain and
    /// notifies <see cref="BundlesChanged"/>.
    /// </summary>
    public void SetFederatedBundle(string trustDomain, X509Certificate2Collection roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        if (!SpiffeId.IsValidTrustDomain(trustDomain) || trustDomain == TrustDomain)
        {
            throw new ArgumentException($"'{trustDomain}' is not a valid foreign trust domain.", nameof(trustDomain));
        }

        lock (_gate)
        {
            // Copy-on-write so readers holding a snapshot never see it change.
            var next = new Dictionary<string, X509Certificate2Collection>(_federated, StringComparer.Ordinal);
            if (roots.Count == 0)
            {
                next.Remove(trustDomain);
            }
            else
            {
                next[trustDomain] = [.. roots];
            }

            _federated = next;
        }

        BundlesChanged?.Invoke(this, EventArgs.Empty);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Root.Dispose();
        lock (_gate)
        {
            foreach (Signer signer in _retired.Append(_current))
            {
                signer.Certificate.Dispose();
                foreach (X509Certificate2 intermediate in signer.Intermediates)
                {
                    intermediate.Dispose();
                }

                signer.Key.Dispose();
            }
        }

        _jwtKey.Dispose();
    }

    private SpiffeId CheckId(string spiffeId)
    {
        if (!SpiffeId.TryParse(spiffeId, out SpiffeId? id) || id.TrustDomain != TrustDomain)
        {
            throw new ArgumentException($"'{spiffeId}' is not a SPIFFE ID of trust domain '{TrustDomain}'.", nameof(spiffeId));
        }

        return id;
    }

    private static X509Certificate2 CreateRoot(string trustDomain, ECDsa key, DateTimeOffset now)
    {
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("beemesh");
        subject.AddCommonName(trustDomain + " root CA");
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        // X509-SVID §4: a signing certificate may carry the trust domain's SPIFFE ID.
        request.CertificateExtensions.Add(UriSan(SpiffeId.FromParts(trustDomain, string.Empty)));
        return request.CreateSelfSigned(now - TimeSpan.FromMinutes(1), now + RootValidity);
    }

    private static X509Extension UriSan(SpiffeId id)
    {
        // Written by hand rather than through Uri, which may re-escape the path.
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteCharacterString(UniversalTagNumber.IA5String, id.ToString(), new Asn1Tag(TagClass.ContextSpecific, 6));
        }

        return new X509Extension("2.5.29.17", writer.Encode(), critical: false);
    }

    // RFC 5280 §4.2.1.10: NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees }, each
    // GeneralSubtree a SEQUENCE { base GeneralName } (minimum 0 and no maximum are the DER defaults).
    // For a URI the base is a host: "example.org" permits spiffe://example.org/... and nothing else
    // (a leading '.' would permit subdomains, which a trust domain must not). Critical, as §4.2.1.10 requires.
    private static X509Extension UriNameConstraint(string trustDomain)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                using (writer.PushSequence())
                {
                    writer.WriteCharacterString(UniversalTagNumber.IA5String, trustDomain, new Asn1Tag(TagClass.ContextSpecific, 6));
                }
            }
        }

        return new X509Extension("2.5.29.30", writer.Encode(), critical: true);
    }

    private static byte[] NewSerial()
    {
        // RFC 5280 §4.1.2.2: positive, at most 20 octets. Setting bit 6 of the first byte keeps the
        // DER minimal (no leading zero) and the value positive.
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40);
        return serial;
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void WriteAtomically(string path, string contents, UnixFileMode mode)
    {
        string temp = path + ".tmp";
        File.Delete(temp);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(Encoding.ASCII.GetBytes(contents));
            stream.Flush(flushToDisk: true);
        }

        // The umask may only have removed bits; set the exact mode before the file becomes visible.
        File.SetUnixFileMode(temp, mode);
        File.Move(temp, path, overwrite: true);
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
