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
