using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Beemesh.Identity.Authority;
using Beemesh.Identity.Tests.Authority;
using Beemesh.Identity.Tests.WorkloadApi;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Tests.Tls;

/// <summary>
/// Workloads on two joined nodes: each SVID is signed by its own node CA, the bundle holds the root
/// only, and mutual TLS works because each side sends its node CA in the handshake.
/// </summary>
public sealed class CrossNodeTlsTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId Web = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/web");
    private static readonly SpiffeId Db = SpiffeId.Parse("spiffe://example.org/ns/shop/sa/db");

    private readonly TempDirectory _dir = new();
    private readonly CertificateAuthority _root;

    public CrossNodeTlsTests()
    {
        _root = CertificateAuthority.LoadOrCreate(_dir.File("first"));
    }

    public void Dispose()
    {
        _root.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task WorkloadsOnTwoJoinedNodesAuthenticateEachOtherWithTheRootAsTheOnlyBundle()
    {
        await using var node1 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-1", state, time));
        await using var node2 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-2", state, time));
        WorkloadApiClient webApi = await node1.StartServerAsync(Web.ToString());
        WorkloadApiClient dbApi = await node2.StartServerAsync(Db.ToString());
        await using X509Source web = await X509Source.StartAsync(webApi, node1.Time).WaitAsync(Guard);
        await using X509Source db = await X509Source.StartAsync(dbApi, node2.Time).WaitAsync(Guard);

        // The Workload API delivered leaf + node CA, and the root alone as the bundle.
        X509Svid webSvid = web.Current.DefaultSvid;
        Assert.Equal(node1.Authority.Intermediates[0].RawData, Assert.Single(webSvid.Intermediates).RawData);
        Assert.Equal(_root.Root.RawData, Assert.Single(web.Current.BundleFor("example.org")).RawData);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        (SpiffeId serverSaw, SpiffeId clientSaw) = await HandshakeAsync(
            listener, SpiffeTls.CreateServerOptions(db, id => id == Web), SpiffeTls.CreateClientOptions(web, id => id == Db));
        Assert.Equal(Web, serverSaw);
        Assert.Equal(Db, clientSaw);
    }

    [Fact]
    public async Task AClientThatReconnectsToTheSameServerIsAcceptedEachTime()
    {
        // A TLS 1.3 session resumed from the first connection would bring the peer's leaf without the
        // node CA it sent then, so the leaf would not chain to the root and the peer would be refused:
        // every reconnection of a joined node's workload (pooled tunnels, Raft members) after its first.
        await using var node1 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-1", state, time));
        await using var node2 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-2", state, time));
        await using X509Source web = await X509Source.StartAsync(await node1.StartServerAsync(Web.ToString()), node1.Time).WaitAsync(Guard);
        await using X509Source db = await X509Source.StartAsync(await node2.StartServerAsync(Db.ToString()), node2.Time).WaitAsync(Guard);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        // One client options object for every connection (as a pool generation or Raft's transport keeps
        // it), and a fresh one, each against server options made per connection.
        SslClientAuthenticationOptions kept = SpiffeTls.CreateClientOptions(web, id => id == Db);
        for (int i = 0; i < 3; i++)
        {
            foreach (SslClientAuthenticationOptions clientOptions in new[] { kept, SpiffeTls.CreateClientOptions(web, id => id == Db) })
            {
                (SpiffeId serverSaw, SpiffeId clientSaw) = await HandshakeAsync(
                    listener, SpiffeTls.CreateServerOptions(db, id => id == Web), clientOptions);
                Assert.Equal(Web, serverSaw);
                Assert.Equal(Db, clientSaw);
            }
        }
    }

    [Fact]
    public async Task WorkloadOfANodeThatJoinedAnotherRootIsRefused()
    {
        using CertificateAuthority impostor = CertificateAuthority.LoadOrCreate(_dir.File("impostor"));
        await using var node1 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(impostor, "node-1", state, time));
        await using var node2 = new WorkloadApiFixture((state, time) => NodeTestCredentials.Join(_root, "node-2", state, time));
        WorkloadApiClient webApi = await node1.StartServerAsync(Web.ToString());
        WorkloadApiClient dbApi = await node2.StartServerAsync(Db.ToString());
        await using X509Source web = await X509Source.StartAsync(webApi, node1.Time).WaitAsync(Guard);
        await using X509Source db = await X509Source.StartAsync(dbApi, node2.Time).WaitAsync(Guard);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        // Same trust domain name, different root: the client refuses the server's chain.
        await Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(
            listener, SpiffeTls.CreateServerOptions(db, _ => true), SpiffeTls.CreateClientOptions(web, _ => true)));
    }

    private static Task<(SpiffeId ServerSaw, SpiffeId ClientSaw)> HandshakeAsync(
        TcpListener listener, SslServerAuthenticationOptions serverOptions, SslClientAuthenticationOptions clientOptions) =>
        TlsHandshake.RunAsync(listener, serverOptions, clientOptions, (serverTls, clientTls) => (SpiffeTls.GetPeerId(serverTls)!, SpiffeTls.GetPeerId(clientTls)!));
}
