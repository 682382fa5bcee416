using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Tunnel;

namespace Beemesh.Agent.Tests.Tunnel;

public sealed class SniTunnelRouterTests
{
    private const string Name = "web.default.example.org";

    [Fact]
    public async Task TlsPassesThroughToTheNamedEndpointUnterminated()
    {
        using X509Certificate2 cert = SelfSigned("CN=web");
        using var backend = new TcpListener(IPAddress.Loopback, 0);
        backend.Start();
        var backendEndpoint = (IPEndPoint)backend.LocalEndpoint;
        string? asked = null;
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => { asked = n; return n == Name ? backendEndpoint : null; });
        router.Start();

        Task serve = Task.Run(async () =>
        {
            using TcpClient conn = await backend.AcceptTcpClientAsync();
            using var tls = new SslStream(conn.GetStream());
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = cert });
            var request = new byte[5];
            await tls.ReadExactlyAsync(request);
            await tls.WriteAsync("pong:"u8.ToArray().Concat(request).ToArray());
            await tls.ShutdownAsync();
        });

        using var client = new TcpClient();
        await client.ConnectAsync(router.Endpoint);
        X509Certificate? seen = null;
        using var clientTls = new SslStream(client.GetStream(), false, (_, c, _, _) => { seen = c; return true; });
        await clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = Name });
        await clientTls.WriteAsync("hello"u8.ToArray());
        var reply = new byte[10];
        await clientTls.ReadExactlyAsync(reply);
        await serve;

        Assert.Equal("pong:hello"u8.ToArray(), reply);
        Assert.Equal(Name, asked);
        // The certificate the client saw is the backend's own: the router did not terminate TLS.
        Assert.Equal(cert.Thumbprint, new X509Certificate2(seen!).Thumbprint);
        Assert.Equal(1, router.Counters.GetValueOrDefault("routed"));
    }

    [Fact]
    public async Task UnknownNameMissingNameAndGarbageAreClosedAndCounted()
    {
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), _ => null);
        router.Start();

        await AssertClosedAsync(router, await ClientHelloSniTests.CaptureHelloAsync("other.default.example.org"));
        await AssertClosedAsync(router, await ClientHelloSniTests.CaptureHelloAsync("127.0.0.1"));
        await AssertClosedAsync(router, "GET / HTTP/1.1\r\nHost: web\r\n\r\n"u8.ToArray());

        Assert.Equal(1, router.Counters.GetValueOrDefault("refused_unknown_name"));
        Assert.Equal(1, router.Counters.GetValueOrDefault("refused_no_name"));
        Assert.Equal(1, router.Counters.GetValueOrDefault("refused_malformed"));
        Assert.Equal(0, router.Counters.GetValueOrDefault("routed"));

        // The router keeps serving after refusals: a further bad client is refused and counted too.
        await AssertClosedAsync(router, [22, 3, 1, 0, 0]);
        Assert.Equal(2, router.Counters.GetValueOrDefault("refused_malformed"));
    }

    [Fact]
    public async Task AnUnreachableSidecarClosesAndIsCounted()
    {
        using var gone = new TcpListener(IPAddress.Loopback, 0);
        gone.Start();
        var endpoint = (IPEndPoint)gone.LocalEndpoint;
        gone.Stop();
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), _ => endpoint);
        router.Start();

        await AssertClosedAsync(router, await ClientHelloSniTests.CaptureHelloAsync(Name));
        Assert.Equal(1, router.Counters.GetValueOrDefault("refused_unreachable"));
    }

    [Fact]
    public async Task RefusedPeersAreCutWhileSplicedAndRefusedAtAccept()
    {
        using var backend = new TcpListener(IPAddress.Loopback, 0);
        backend.Start();
        var backendEndpoint = (IPEndPoint)backend.LocalEndpoint;
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => n == Name ? backendEndpoint : null);
        router.Start();
        byte[] hello = await ClientHelloSniTests.CaptureHelloAsync(Name);

        using var client = new TcpClient();
        await client.ConnectAsync(router.Endpoint);
        NetworkStream toRouter = client.GetStream();
        await toRouter.WriteAsync(hello);
        using TcpClient sidecar = await backend.AcceptTcpClientAsync();
        NetworkStream atSidecar = sidecar.GetStream();
        await atSidecar.ReadExactlyAsync(new byte[hello.Length]);
        // Spliced both ways before the refusal.
        await atSidecar.WriteAsync("up"u8.ToArray());
        await toRouter.ReadExactlyAsync(new byte[2]);
        Assert.Equal(1, router.LiveConnections);

        Assert.Equal(0, router.RefusePeers(new HashSet<IPAddress> { IPAddress.Parse("10.99.0.2") }));
        Assert.Equal(1, router.RefusePeers(new HashSet<IPAddress> { IPAddress.Parse("10.99.0.2"), IPAddress.Loopback }));

        Assert.Equal(0, await ReadOrResetAsync(toRouter));
        Assert.Equal(0, await ReadOrResetAsync(atSidecar));
        Assert.Equal(1, router.Counters.GetValueOrDefault("cut_revoked_peer"));

        // New connections from the address are reset before their hello is read.
        using (var refused = new TcpClient())
        {
            int read;
            try
            {
                await refused.ConnectAsync(router.Endpoint);
                await refused.GetStream().WriteAsync(hello);
                read = await ReadOrResetAsync(refused.GetStream());
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                read = 0;
            }

            Assert.Equal(0, read);
        }

        Assert.Equal(1, router.Counters.GetValueOrDefault("refused_revoked_peer"));
        Assert.Equal(1, router.Counters.GetValueOrDefault("routed"));

        // An empty set lets it in again.
        Assert.Equal(0, router.RefusePeers(new HashSet<IPAddress>()));
        using var again = new TcpClient();
        await again.ConnectAsync(router.Endpoint);
        await again.GetStream().WriteAsync(hello);
        using TcpClient routed = await backend.AcceptTcpClientAsync();
        await routed.GetStream().ReadExactlyAsync(new byte[hello.Length]);
        Assert.Equal(2, router.Counters.GetValueOrDefault("routed"));
    }

    [Fact]
    public async Task ARelayedConnectionLeftHalfClosedIsResetAfterTheHalfClosedTimeout()
    {
        using var backend = new TcpListener(IPAddress.Loopback, 0);
        backend.Start();
        var backendEndpoint = (IPEndPoint)backend.LocalEndpoint;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => n == Name ? backendEndpoint : null, time)
        {
            HalfClosedTimeout = TimeSpan.FromSeconds(20),
        };
        router.Start();
        byte[] hello = await ClientHelloSniTests.CaptureHelloAsync(Name);

        using var client = new TcpClient();
        await client.ConnectAsync(router.Endpoint);
        NetworkStream toRouter = client.GetStream();
        await toRouter.WriteAsync(hello);
        using TcpClient sidecar = await backend.AcceptTcpClientAsync();
        NetworkStream atSidecar = sidecar.GetStream();
        await atSidecar.ReadExactlyAsync(new byte[hello.Length]);

        // The sidecar ends its side (as it does when its keep-alive gives up on the caller); the
        // caller, stopped, never ends its own. The FIN reaches it after the timer was armed.
        sidecar.Client.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await toRouter.ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, router.LiveConnections);

        time.Advance(TimeSpan.FromSeconds(19.9));
        Assert.Equal(0, router.Counters.GetValueOrDefault("cut_half_closed"));
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, router.Counters.GetValueOrDefault("cut_half_closed"));
        // Both of the relay's sockets are gone: the sidecar's end sees them close.
        Assert.Equal(0, await ReadOrResetAsync(atSidecar));
    }

    private static async Task<int> ReadOrResetAsync(NetworkStream stream)
    {
        try
        {
            return await stream.ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static async Task AssertClosedAsync(SniTunnelRouter router, byte[] send)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(router.Endpoint);
        NetworkStream s = client.GetStream();
        await s.WriteAsync(send);
        var buffer = new byte[16];
        int read;
        try
        {
            read = await s.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (IOException)
        {
            read = 0;
        }

        Assert.Equal(0, read);
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }
}
