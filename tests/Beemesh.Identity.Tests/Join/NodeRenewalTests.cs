using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Join;
using Beemesh.Spiffe;
using Beemesh.Spiffe.X509;
using Microsoft.Extensions.Time.Testing;

namespace Beemesh.Identity.Tests.Join;

/// <summary>Node certificate renewal over real TLS on loopback: the first node's join server renews joined nodes.</summary>
public sealed class NodeRenewalTests : IAsyncLifetime
{
    private static readonly TimeSpan Guard = JoinServerHarness.Guard;

    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly CertificateAuthority _root;
    private readonly JoinTokenStore _tokens;
    private readonly JoinServer _server;
    private readonly HashSet<string> _revoked = [];
    private readonly JoinServerHarness _serving;

    public NodeRenewalTests()
    {
        string first = _dir.File("first");
        _root = CertificateAuthority.LoadOrCreate(first, timeProvider: _time);
        _tokens = new JoinTokenStore(first, JoinToken.FingerprintOf(_root.Root), _time);
        _server = new JoinServer(_root, _tokens, new NodeRegistry(first, _time), "first", timeProvider: _time)
        {
            IsRevoked = name => _revoked.Contains(name),
        };
        _serving = new JoinServerHarness(_server);
    }

    private IReadOnlyList<EndPoint> Endpoints => [_serving.Endpoint];

    /// <inheritdoc />
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        await _serving.DisposeAsync();
        _server.Dispose();
        _root.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task JoinedNodeRenewsWithNewKeysAndTheSameNameAndTheRenewalIsSaved()
    {
        using NodeCredentials joined = await JoinAsync("worker-1");
        string state = _dir.File("worker-1");
        NodeCredentialStore.Save(state, joined);

        _time.Advance(TimeSpan.FromDays(250));
        using NodeCredentials renewed = await NodeRenewalClient.RenewAsync(Endpoints, joined, _time).WaitAsync(Guard);
        JoinServerResult served = await NextResultAsync();
        Assert.True(served.Joined, served.Message);
        Assert.Contains("node worker-1 renewed its node certificates", served.Message, StringComparison.Ordinal);

        Assert.Equal("worker-1", renewed.NodeName);
        Assert.Equal("worker-1", NodeSvidValidator.Validate(renewed.NodeSvid, _root.Bundle, "example.org", _time.GetUtcNow(), out _));
        Assert.NotEqual(joined.NodeSvid.SerialNumber, renewed.NodeSvid.SerialNumber);
        Assert.NotEqual(joined.NodeSvid.PublicKey.EncodedKeyValue.RawData, renewed.NodeSvid.PublicKey.EncodedKeyValue.RawData);
        Assert.NotEqual(joined.NodeCa.PublicKey.EncodedKeyValue.RawData, renewed.NodeCa.PublicKey.EncodedKeyValue.RawData);
        // A full new year from the renewal, not from the join.
        Assert.True(renewed.NodeSvid.NotAfter.ToUniversalTime() > _time.GetUtcNow().AddDays(364).UtcDateTime);

        // Saved whole; the CA loaded from it signs with the new node CA; a leaf from the old one stays valid.
        using CertificateAuthority before = CertificateAuthority.LoadOrCreate(state, timeProvider: _time);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 oldLeaf = before.IssueX509Svid("spiffe://example.org/ns/shop/sa/web", key);
        NodeCredentialStore.Replace(state, renewed);
        using (NodeCredentials reloaded = NodeCredentialStore.Load(state)!)
        {
            Assert.Equal(renewed.NodeSvid.Thumbprint, reloaded.NodeSvid.Thumbprint);
            Assert.Equal(renewed.NodeCa.Thumbprint, reloaded.NodeCa.Thumbprint);
        }

        before.ReplaceNodeCa(renewed.NodeCa);
        (X509Certificate2 newLeaf, X509Certificate2Collection chain) = before.IssueX509SvidChain(
            "spiffe://example.org/ns/shop/sa/web", new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256).PublicKey);
        using X509Certificate2 ownedLeaf = newLeaf;
        Assert.Equal(renewed.NodeCa.Thumbprint, Assert.Single(chain).Thumbprint);
        Assert.Equal(renewed.NodeCa.Thumbprint, Assert.Single(before.Intermediates).Thumbprint);
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(newLeaf, chain, _root.Bundle, "example.org", _time.GetUtcNow(), out _));
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(newLeaf, before.Intermediates, _root.Bundle, "example.org", _time.GetUtcNow(), out _));
        Assert.Equal(SvidValidationResult.Valid, SvidValidator.Validate(oldLeaf, [joined.NodeCa], _root.Bundle, "example.org", _time.GetUtcNow(), out _));
        Assert.NotEqual(SvidValidationResult.Valid, SvidValidator.Validate(newLeaf, [joined.NodeCa], _root.Bundle, "example.org", _time.GetUtcNow(), out _));
    }

    [Fact]
    public async Task RevokedNodeIsRefused()
    {
        using NodeCredentials joined = await JoinAsync("worker-1");
        _revoked.Add("worker-1");
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => NodeRenewalClient.RenewAsync(Endpoints, joined, _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.Revoked, e.Refusal);
        Assert.Equal("renewal refused: node worker-1 was removed from the mesh", e.Message);
        Assert.Equal(JoinRefusal.Revoked, (await NextResultAsync()).Refusal);
    }

    [Fact]
    public async Task ExpiredNodeSvidIsRefused()
    {
        using NodeCredentials joined = await JoinAsync("worker-1");
        _time.Advance(TimeSpan.FromDays(366));
        JoinException e = await Assert.ThrowsAsync<JoinException>(() => NodeRenewalClient.RenewAsync(Endpoints, joined, _time).WaitAsync(Guard));
        Assert.Equal(JoinRefusal.NotANode, e.Refusal);
        Assert.StartsWith("renewal refused: the presented certificate is not a current node SVID", e.Message, StringComparison.Ordinal);
        Assert.Equal(JoinRefusal.NotANode, (await NextResultAsync()).Refusal);
    }

    [Fact]
    public async Task ANodeAskingForAnotherNamesCertificatesIsRefused()
    {
        using NodeCredentials one = await JoinAsync("worker-1");
        using NodeCredentials two = await JoinAsync("worker-2");
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        JoinMessage answer = await RawRenewAsync(one.NodeSvid, new JoinMessage
        {
            Type = "renew",
            NodeName = "worker-2",
            NodeCaRequest = JoinClient.SigningRequest(caKey, "x"),
            NodeSvidRequest = JoinClient.SigningRequest(svidKey, "x"),
        });
        Assert.Equal("error", answer.Type);
        Assert.Equal(nameof(JoinRefusal.NameMismatch), answer.Code);
        Assert.Equal("renewal refused: node worker-1 asked for the certificates of worker-2", answer.Message);
        Assert.Equal(JoinRefusal.NameMismatch, (await NextResultAsync()).Refusal);

        // The current key again is refused: a renewal takes a new key.
        using ECDsa current = one.NodeSvid.GetECDsaPrivateKey()!;
        answer = await RawRenewAsync(one.NodeSvid, new JoinMessage
        {
            Type = "renew",
            NodeName = "worker-1",
            NodeCaRequest = JoinClient.SigningRequest(caKey, "x"),
            NodeSvidRequest = JoinClient.SigningRequest(current, "x"),
        });
        Assert.Equal(nameof(JoinRefusal.BadRequest), answer.Code);
        Assert.Equal(JoinRefusal.BadRequest, (await NextResultAsync()).Refusal);
    }

    [Fact]
    public async Task WorkloadSvidsAndCertificatesOfOtherRootsAreNoNodeIdentity()
    {
        using NodeCredentials joined = await JoinAsync("worker-1");
        string state = _dir.File("worker-1");
        NodeCredentialStore.Save(state, joined);
        using CertificateAuthority nodeCa = CertificateAuthority.LoadOrCreate(state, timeProvider: _time);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // A workload SVID signed by the node CA, even one whose path looks like a node's, is not a node SVID.
        using X509Certificate2 workload = nodeCa.IssueX509Svid("spiffe://example.org/ns/shop/sa/web", key).CopyWithPrivateKey(key);
        JoinMessage answer = await RawRenewAsync(workload, Renew("worker-1"));
        Assert.Equal(nameof(JoinRefusal.NotANode), answer.Code);
        Assert.Equal(JoinRefusal.NotANode, (await NextResultAsync()).Refusal);

        using CertificateAuthority stranger = CertificateAuthority.LoadOrCreate(_dir.File("stranger"), timeProvider: _time);
        using var strangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 foreign = stranger.IssueNodeSvid("worker-1", new PublicKey(strangerKey)).CopyWithPrivateKey(strangerKey);
        answer = await RawRenewAsync(foreign, Renew("worker-1"));
        Assert.Equal(nameof(JoinRefusal.NotANode), answer.Code);
        Assert.Equal(JoinRefusal.NotANode, (await NextResultAsync()).Refusal);

        // No client certificate at all.
        answer = await RawRenewAsync(null, Renew("worker-1"));
        Assert.Equal(nameof(JoinRefusal.NotANode), answer.Code);
        Assert.Equal(JoinRefusal.NotANode, (await NextResultAsync()).Refusal);

        // The server kept serving: a real renewal still works.
        using NodeCredentials renewed = await NodeRenewalClient.RenewAsync(Endpoints, joined, _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
    }

    [Fact]
    public void AnInterruptedReplaceIsFinishedAtTheNextLoad()
    {
        using var root = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string state = _dir.File("crash");
        (NodeCredentials first, NodeCredentials second) = (Issue("worker-9"), Issue("worker-9"));
        using (first)
        using (second)
        {
            NodeCredentialStore.Save(state, first);
            // A crash after node.next/ was complete but before the swap: the next load takes the new set.
            CopyDirectory(Path.Combine(state, NodeCredentialStore.DirectoryName), Path.Combine(state, "saved-first"));
            NodeCredentialStore.Replace(state, second);
            Directory.Move(Path.Combine(state, NodeCredentialStore.DirectoryName), Path.Combine(state, "node.next"));
            CopyDirectory(Path.Combine(state, "saved-first"), Path.Combine(state, NodeCredentialStore.DirectoryName));
            Assert.True(NodeCredentialStore.Exists(state));
            using NodeCredentials loaded = NodeCredentialStore.Load(state)!;
            Assert.Equal(second.NodeSvid.Thumbprint, loaded.NodeSvid.Thumbprint);
            Assert.False(Directory.Exists(Path.Combine(state, "node.next")));
        }

        // Credentials of another node never replace these.
        using NodeCredentials other = Issue("worker-8");
        Assert.Throws<InvalidOperationException>(() => NodeCredentialStore.Replace(state, other));
    }

    private NodeCredentials Issue(string name)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        (X509Certificate2 ca, X509Certificate2 svid) = _root.IssueNodeCertificates(name, new PublicKey(caKey), new PublicKey(svidKey));
        using (ca)
        using (svid)
        {
            return new NodeCredentials(name, "example.org", X509CertificateLoader.LoadCertificate(_root.Root.RawData), ca.CopyWithPrivateKey(caKey), svid.CopyWithPrivateKey(svidKey));
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }

    private static JoinMessage Renew(string name)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var svidKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new JoinMessage { Type = "renew", NodeName = name, NodeCaRequest = JoinClient.SigningRequest(caKey, "x"), NodeSvidRequest = JoinClient.SigningRequest(svidKey, "x") };
    }

    private async Task<NodeCredentials> JoinAsync(string name)
    {
        NodeCredentials credentials = await JoinClient.JoinAsync(Endpoints, _tokens.Create(), name, CancellationToken.None, timeProvider: _time).WaitAsync(Guard);
        Assert.True((await NextResultAsync()).Joined);
        return credentials;
    }

    // Speaks the renewal protocol by hand, presenting client (or no client certificate).
    private async Task<JoinMessage> RawRenewAsync(X509Certificate2? client, JoinMessage request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_serving.Endpoint).WaitAsync(Guard);
        using X509Certificate2? usable = client is null ? null : X509CertificateLoader.LoadPkcs12(client.Export(X509ContentType.Pkcs12), null);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "x",
            ApplicationProtocols = [JoinProtocol.RenewalProtocol],
            ClientCertificateContext = usable is null ? null : SslStreamCertificateContext.Create(usable, null, offline: true),
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
        }).WaitAsync(Guard);
        await JoinProtocol.WriteAsync(tls, request, CancellationToken.None);
        return await JoinProtocol.ReadAsync(tls, CancellationToken.None).WaitAsync(Guard);
    }

    private Task<JoinServerResult> NextResultAsync() => _serving.NextResultAsync();
}
