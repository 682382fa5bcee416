using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Beemesh.Identity.Tests.WorkloadApi;
using Beemesh.Spiffe;
using Beemesh.Spiffe.WorkloadApi;
using Beemesh.Spiffe.X509;

namespace Beemesh.Identity.Tests.Tls;

public sealed class MutualTlsTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId Web = SpiffeId.Parse("spiffe://example.org/web");
    private static readonly SpiffeId Db = SpiffeId.Parse("spiffe://example.org/db");

    [Fact]
    public async Task HandshakeAuthenticatesBothSidesAndPicksUpRotationWithoutRestart()
    {
        await using var fixture = new WorkloadApiFixture();
        // Two servers on one CA give this one process two identities: db serves, web calls.
        WorkloadApiClient dbApi = await fixture.StartServerAsync(Db.ToString(), seed: 1);
        WorkloadApiClient webApi = await fixture.StartServerAsync(Web.ToString(), seed: 2);
        await using X509Source db = await X509Source.StartAsync(dbApi, fixture.Time).WaitAsync(Guard);
        await using X509Source web = await X509Source.StartAsync(webApi, fixture.Time).WaitAsync(Guard);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        SslServerAuthenticationOptions serverOptions = SpiffeTls.CreateServerOptions(db, id => id == Web);
        SslClientAuthenticationOptions clientOptions = SpiffeTls.CreateClientOptions(web, id => id == Db);

        (string serverSaw1, string clientSaw1) = await HandshakeAsync(listener, serverOptions, clientOptions);
        Assert.Equal(web.Current.DefaultSvid.Certificate.SerialNumber, serverSaw1);
        Assert.Equal(db.Current.DefaultSvid.Certificate.SerialNumber, clientSaw1);

        var dbRotated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var webRotated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        db.Updated += (_, _) => dbRotated.TrySetResult();
        web.Updated += (_, _) => webRotated.TrySetResult();
        fixture.Time.Advance(TimeSpan.FromMinutes(34));
        await Task.WhenAll(dbRotated.Task, webRotated.Task).WaitAsync(Guard);

        // Same option objects, same listener: the callbacks read the sources' new SVIDs.
        (string serverSaw2, string clientSaw2) = await HandshakeAsync(listener, serverOptions, clientOptions);
        Assert.NotEqual(serverSaw1, serverSaw2);
        Assert.NotEqual(clientSaw1, clientSaw2);
        Assert.Equal(web.Current.DefaultSvid.Certificate.SerialNumber, serverSaw2);
        Assert.Equal(db.Current.DefaultSvid.Certificate.SerialNumber, clientSaw2);
    }

    [Fact]
    public async Task UnauthorizedServerIsRefused()
    {
        await using var fixture = new WorkloadApiFixture();
        WorkloadApiClient dbApi = await fixture.StartServerAsync(Db.ToString(), seed: 1);
        WorkloadApiClient webApi = await fixture.StartServerAsync(Web.ToString(), seed: 2);
        await using X509Source db = await X509Source.StartAsync(dbApi, fixture.Time).WaitAsync(Guard);
        await using X509Source web = await X509Source.StartAsync(webApi, fixture.Time).WaitAsync(Guard);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        SslServerAuthenticationOptions serverOptions = SpiffeTls.CreateServerOptions(db, _ => true);
        SslClientAuthenticationOptions clientOptions = SpiffeTls.CreateClientOptions(web, id => id == SpiffeId.Parse("spiffe://example.org/admin"));

        await Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(listener, serverOptions, clientOptions));
    }

    // Returns the serial of the certificate each side received from its peer, after checking the peer IDs.
    private static Task<(string ServerSaw, string ClientSaw)> HandshakeAsync(
        TcpListener listener, SslServerAuthenticationOptions serverOptions, SslClientAuthenticationOptions clientOptions) =>
        TlsHandshake.RunAsync(listener, serverOptions, clientOptions, (serverTls, clientTls) =>
        {
            Assert.Equal(SslProtocols.Tls13, clientTls.SslProtocol);
            Assert.Equal(Web, SpiffeTls.GetPeerId(serverTls));
            Assert.Equal(Db, SpiffeTls.GetPeerId(clientTls));
            return (serverTls.RemoteCertificate!.GetSerialNumberString(), clientTls.RemoteCertificate!.GetSerialNumberString());
        });
}
