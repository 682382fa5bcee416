using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Tests.Authority;
using Beemesh.Identity.Tests.WorkloadApi;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Tests.Tls;

/// <summary>
/// The TLS state a sidecar keeps between handshakes: one certificate context per SVID (rebuilt on
/// rotation), one offline chain policy for the platform's chain, and the start-up self-handshake.
/// SVIDs here come from node CAs, as in the mesh, so every handshake sends an intermediate.
/// </summary>
public sealed class TlsStateReuseTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId Web = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/web");
    private static readonly SpiffeId Db = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/db");

    private readonly TempDirectory _dir = new();
    private readonly CertificateAuthority _root;

    public TlsStateReuseTests()
    {
        _root = CertificateAuthority.LoadOrCreate(_dir.File("first"));
    }

    public void Dispose()
    {
        _root.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task CertificateContextIsBuiltOncePerSvidAndAgainAfterRotation()
    {
        await using var node = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-1", state, time));
        await using X509Source db = await X509Source.StartAsync(await node.StartServerAsync(Db.ToString()), node.Time).WaitAsync(Guard);
        X509Svid first = db.Current.DefaultSvid;
        Assert.NotEmpty(first.Intermediates);

        // Options are made per connection (server) and per pool generation (client): all share one context.
        SslStreamCertificateContext? context = SpiffeTls.CreateServerOptions(db, _ => true).ServerCertificateContext;
        Assert.NotNull(context);
        Assert.Same(context, SpiffeTls.CreateServerOptions(db, _ => true).ServerCertificateContext);
        Assert.Same(context, SpiffeTls.CreateClientOptions(db, _ => true).ClientCertificateContext);
        Assert.Same(context, SpiffeTls.CertificateContextFor(first));
        Assert.Equal(first.Certificate.RawData, context.TargetCertificate.RawData);

        var rotated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        db.Updated += (_, _) => rotated.TrySetResult();
        node.Time.Advance(TimeSpan.FromMinutes(34));
        await rotated.Task.WaitAsync(Guard);
        X509Svid second = db.Current.DefaultSvid;
        Assert.NotEqual(first.Certificate.SerialNumber, second.Certificate.SerialNumber);

        SslStreamCertificateContext? renewed = SpiffeTls.CreateServerOptions(db, _ => true).ServerCertificateContext;
        Assert.NotNull(renewed);
        Assert.NotSame(context, renewed);
        Assert.Equal(second.Certificate.RawData, renewed.TargetCertificate.RawData);
        Assert.Same(renewed, SpiffeTls.CreateClientOptions(db, _ => true).ClientCertificateContext);
        // The old SVID's context is still the one for the old SVID (connections made with it keep it).
        Assert.Same(context, SpiffeTls.CertificateContextFor(first));
    }

    [Fact]
    public async Task SharedChainPolicyIsOfflineAndNotChangedByHandshakes()
    {
        await using var node1 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-1", state, time));
        await using var node2 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-2", state, time));
        await using X509Source web = await X509Source.StartAsync(await node1.StartServerAsync(Web.ToString()), node1.Time).WaitAsync(Guard);
        await using X509Source db = await X509Source.StartAsync(await node2.StartServerAsync(Db.ToString()), node2.Time).WaitAsync(Guard);

        SslServerAuthenticationOptions serverOptions = SpiffeTls.CreateServerOptions(db, id => id == Web);
        SslClientAuthenticationOptions clientOptions = SpiffeTls.CreateClientOptions(web, id => id == Db);
        X509ChainPolicy? policy = serverOptions.CertificateChainPolicy;
        Assert.NotNull(policy);
        Assert.Same(policy, clientOptions.CertificateChainPolicy);
        Assert.Equal(X509RevocationMode.NoCheck, policy.RevocationMode);
        Assert.True(policy.DisableCertificateDownloads);
        Assert.Equal(X509ChainTrustMode.CustomRootTrust, policy.TrustMode);
        Assert.Empty(policy.CustomTrustStore);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        for (int i = 0; i < 2; i++)
        {
            // Each side still receives the other's node CA (the SPIFFE check needs it) ...
            (int serverGot, int clientGot) = await TlsHandshake.RunAsync(listener, serverOptions, clientOptions, (serverTls, clientTls) =>
            {
                Assert.Equal(Web, SpiffeTls.GetPeerId(serverTls));
                Assert.Equal(Db, SpiffeTls.GetPeerId(clientTls));
                return (SpiffeTls.GetPeerIntermediates((X509Certificate2)serverTls.RemoteCertificate!)?.Count ?? 0,
                    SpiffeTls.GetPeerIntermediates((X509Certificate2)clientTls.RemoteCertificate!)?.Count ?? 0);
            });
            Assert.Equal(1, serverGot);
            Assert.Equal(1, clientGot);

            // ... while the shared policy stays as it was: each handshake works on its own copy.
            Assert.Empty(policy.ExtraStore);
            Assert.Empty(policy.CustomTrustStore);
        }
    }

    [Fact]
    public async Task WarmUpHandshakesWithItselfAndStillChecksThePeer()
    {
        await using var node = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-1", state, time));
        await using X509Source web = await X509Source.StartAsync(await node.StartServerAsync(Web.ToString()), node.Time).WaitAsync(Guard);

        Assert.True(await SpiffeTls.WarmUpAsync(web, Web, [SslApplicationProtocol.Http2]).WaitAsync(Guard));
        // The self-handshake runs the real checks: expecting another identity fails it.
        Assert.False(await SpiffeTls.WarmUpAsync(web, Db).WaitAsync(Guard));
    }

    [Fact]
    public void PlatformStoresLoadWithTheMachineRoots()
    {
        using var roots = new X509Store(StoreName.Root, StoreLocation.LocalMachine);
        roots.Open(OpenFlags.ReadOnly);
        X509Certificate2Collection expected = roots.Certificates;
        int count = expected.Count;
        foreach (X509Certificate2 certificate in expected)
        {
            certificate.Dispose();
        }

        Assert.Equal(count, SpiffeTls.LoadPlatformCertificateStores());
    }

    [Fact]
    public async Task PlatformStoresArePreloadedOncePerProcess()
    {
        Task<int> first = SpiffeTls.PreloadPlatformCertificateStores();
        Assert.Same(first, SpiffeTls.PreloadPlatformCertificateStores());
        Assert.Equal(SpiffeTls.LoadPlatformCertificateStores(), await first);
    }

    [Fact]
    public async Task WarmUpWithoutAnSvidDoesNothing()
    {
        await using var node = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-1", state, time));
        // A source that was never started has no SVID.
        using var client = new WorkloadApiClient(_dir.File("nothing.sock"));
        await using var source = new X509Source(client, node.Time);
        Assert.False(await SpiffeTls.WarmUpAsync(source, Web).WaitAsync(Guard));
    }
}
