using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Beemesh.Agent.Client;
using Beemesh.Agent.Hosting;
using Beemesh.Agent.Tests.Mesh;
using Beemesh.Agent.Tunnel;
using Beemesh.Spiffe.Processes;

namespace Beemesh.Agent.Tests.Tunnel;

public sealed class TunnelHandoffTests : IDisposable
{
    private const string Name = "web.default.example.org";
    private readonly string _root = Directory.CreateTempSubdirectory("bm-handoff-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task ADescriptorSentOverTheChannelCarriesTheLiveConnection()
    {
        (Socket sender, Socket receiver) = await SeqpacketPairAsync();
        using (sender)
        using (receiver)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            using var caller = new TcpClient();
            await caller.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
            Socket accepted = await listener.AcceptSocketAsync();
            await caller.GetStream().WriteAsync("queued"u8.ToArray());

            Assert.Equal(0, TunnelHandoff.Send(sender.SafeHandle, accepted.SafeHandle));
            // The sender's copy goes (no async operation ever ran on it, so a plain close); the connection lives on in the receiver's.
            accepted.Dispose();
            int? fd = await Task.Run(() => TunnelHandoff.Receive(receiver.SafeHandle));
            Assert.NotNull(fd);
            Assert.True(fd >= 0);
            using var received = new Socket(new SafeSocketHandle(fd.Value, ownsHandle: true));

            Assert.Equal(((IPEndPoint)caller.Client.LocalEndPoint!).Port, ((IPEndPoint)received.RemoteEndPoint!).Port);
            var buffer = new byte[6];
            await received.ReceiveAsync(buffer.AsMemory(0, 6), SocketFlags.None);
            Assert.Equal("queued"u8.ToArray(), buffer);
            await received.SendAsync("answer"u8.ToArray(), SocketFlags.None);
            await caller.GetStream().ReadExactlyAsync(buffer);
            Assert.Equal("answer"u8.ToArray(), buffer);

            // A message without a descriptor reads as -1; the end of the channel as null.
            sender.Send("x"u8.ToArray());
            Assert.Equal(-1, await Task.Run(() => TunnelHandoff.Receive(receiver.SafeHandle)));
            sender.Shutdown(SocketShutdown.Both);
            Assert.Null(await Task.Run(() => TunnelHandoff.Receive(receiver.SafeHandle)));
        }
    }

    [Fact]
    public async Task TheRouterHandsTheConnectionToTheChannelAndLeavesTheDataPath()
    {
        using X509Certificate2 cert = SelfSigned("CN=web");
        await using var channels = new TunnelHandoffServer(Path.Combine(_root, TunnelHandoff.SocketName), (id, pid) => id == "w1" && pid == Environment.ProcessId ? null : "not this one");
        channels.Start();
        var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => n == Name ? new IPEndPoint(IPAddress.Loopback, 9) : null)
        {
            HandOff = (n, socket) => channels.TrySend("w1", socket),
        };
        await using (router)
        {
            router.Start();
            using Socket channel = OpenChannel("w1");
            Assert.Equal(1, channels.Channels);

            // The sidecar's side: take the descriptor and serve TLS on it.
            Task serve = Task.Run(async () =>
            {
                int? fd = TunnelHandoff.Receive(channel.SafeHandle);
                using var socket = new Socket(new SafeSocketHandle(fd!.Value, ownsHandle: true));
                using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
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

            // The router is out of the path: stopping it does not touch the connection.
            Assert.Equal(1, router.Counters.GetValueOrDefault("handed_off"));
            Assert.Equal(0, router.LiveConnections);
            await router.DisposeAsync();
            await clientTls.WriteAsync("hello"u8.ToArray());
            var reply = new byte[10];
            await clientTls.ReadExactlyAsync(reply);
            await serve;

            Assert.Equal("pong:hello"u8.ToArray(), reply);
            Assert.Equal(cert.Thumbprint, new X509Certificate2(seen!).Thumbprint);
            Assert.Equal(1, router.Counters.GetValueOrDefault("routed"));
            Assert.Equal(0, router.Counters.GetValueOrDefault("relayed"));
        }
    }

    [Fact]
    public async Task WithoutAChannelTheConnectionIsRelayedAndCountedSo()
    {
        using X509Certificate2 cert = SelfSigned("CN=web");
        await using var channels = new TunnelHandoffServer(Path.Combine(_root, TunnelHandoff.SocketName), (_, _) => null);
        channels.Start();
        using var backend = new TcpListener(IPAddress.Loopback, 0);
        backend.Start();
        var backendEndpoint = (IPEndPoint)backend.LocalEndpoint;
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => n == Name ? backendEndpoint : null)
        {
            HandOff = (_, socket) => channels.TrySend("w1", socket),
        };
        router.Start();

        Task serve = Task.Run(async () =>
        {
            using TcpClient conn = await backend.AcceptTcpClientAsync();
            using var tls = new SslStream(conn.GetStream());
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = cert });
            await tls.WriteAsync("page"u8.ToArray());
            await tls.ShutdownAsync();
        });

        using var client = new TcpClient();
        await client.ConnectAsync(router.Endpoint);
        using var clientTls = new SslStream(client.GetStream(), false, (_, _, _, _) => true);
        await clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = Name });
        var page = new byte[4];
        await clientTls.ReadExactlyAsync(page);
        await serve;

        Assert.Equal("page"u8.ToArray(), page);
        Assert.Equal(1, router.Counters.GetValueOrDefault("routed"));
        Assert.Equal(1, router.Counters.GetValueOrDefault("relayed"));
        Assert.Equal(0, router.Counters.GetValueOrDefault("handed_off"));
    }

    [Fact]
    public async Task AHelloInTwoPiecesIsHandedOffWholeAndOneCutShortIsRefused()
    {
        await using var channels = new TunnelHandoffServer(Path.Combine(_root, TunnelHandoff.SocketName), (_, _) => null);
        channels.Start();
        await using var router = new SniTunnelRouter(new IPEndPoint(IPAddress.Loopback, 0), n => n == Name ? new IPEndPoint(IPAddress.Loopback, 9) : null)
        {
            HandOff = (_, socket) => channels.TrySend("w1", socket),
        };
        router.Start();
        using Socket channel = OpenChannel("w1");
        byte[] hello = await ClientHelloSniTests.CaptureHelloAsync(Name);

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(router.Endpoint);
            await client.GetStream().WriteAsync(hello.AsMemory(0, 20));
            await client.GetStream().FlushAsync();
            await client.GetStream().WriteAsync(hello.AsMemory(20));
            int? fd = await Task.Run(() => TunnelHandoff.Receive(channel.SafeHandle));
            using var received = new Socket(new SafeSocketHandle(fd!.Value, ownsHandle: true));
            // Nothing was consumed: the whole hello is still there for the sidecar.
            var copy = new byte[hello.Length];
            int read = 0;
            while (read < copy.Length)
            {
                int n = await received.ReceiveAsync(copy.AsMemory(read), SocketFlags.None);
                Assert.NotEqual(0, n);
                read += n;
            }

            Assert.Equal(hello, copy);
        }

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(router.Endpoint);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync(hello.AsMemory(0, 20));
            client.Client.Shutdown(SocketShutdown.Send);
            // The router closes it (and counts why) rather than waiting out the hello timeout; the
            // peeked bytes were never read, so the close is a reset.
            int read;
            try
            {
                read = await stream.ReadAsync(new byte[16]);
            }
            catch (IOException)
            {
                read = 0;
            }

            Assert.Equal(0, read);
        }

        Assert.Equal(1, router.Counters.GetValueOrDefault("handed_off"));
        Assert.Equal(1, router.Counters.GetValueOrDefault("refused_malformed"));
    }

    [Fact]
    public async Task AChannelIsAcceptedOnlyFromTheProcessThatRegisteredTheWorkload()
    {
        await using AgentHost host = await MeshNodes.StartAsync(_root, "a", null, null);
        Assert.NotNull(host.TunnelHandoff);
        using Process other = Process.Start(new ProcessStartInfo("sleep", "60"))!;
        try
        {
            ulong ownStart = ProcessStat.Read(Environment.ProcessId)!.Value.StartTime;
            ulong otherStart = ProcessStat.Read(other.Id)!.Value.StartTime;
            WorkloadRecord ours = host.Workloads.Add(new WorkloadRegistration { Name = "web", Namespace = "default", Pid = other.Id, TunnelEndpoint = "127.0.0.1:9" }, Environment.ProcessId, ownStart)!;
            WorkloadRecord theirs = host.Workloads.Add(new WorkloadRegistration { Name = "api", Namespace = "default", Pid = other.Id, TunnelEndpoint = "127.0.0.1:9" }, other.Id, otherStart)!;

            Assert.Equal(TunnelHandoff.Accepted, await AnswerAsync(host.TunnelHandoff!.Path, ours.Id));
            Assert.Equal($"refused: process {Environment.ProcessId} did not register it", await AnswerAsync(host.TunnelHandoff.Path, theirs.Id));
            Assert.Equal("refused: no such workload on this node", await AnswerAsync(host.TunnelHandoff.Path, "w-unknown"));
            Assert.Equal(1, host.TunnelHandoff.Counters.GetValueOrDefault("channels_accepted"));
            Assert.Equal(2, host.TunnelHandoff.Counters.GetValueOrDefault("channels_refused"));
        }
        finally
        {
            other.Kill();
            await other.WaitForExitAsync();
        }
    }

    private async Task<string> AnswerAsync(string path, string id)
    {
        using var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        await channel.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await channel.SendAsync(Encoding.UTF8.GetBytes(id), SocketFlags.None);
        var answer = new byte[TunnelHandoff.MaxMessageBytes];
        int length = await channel.ReceiveAsync(answer, SocketFlags.None);
        return Encoding.UTF8.GetString(answer, 0, length);
    }

    private Socket OpenChannel(string id)
    {
        var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        channel.Connect(new UnixDomainSocketEndPoint(Path.Combine(_root, TunnelHandoff.SocketName)));
        channel.Send(Encoding.UTF8.GetBytes(id));
        var answer = new byte[64];
        int length = channel.Receive(answer);
        Assert.Equal(TunnelHandoff.Accepted, Encoding.UTF8.GetString(answer, 0, length));
        return channel;
    }

    private async Task<(Socket Sender, Socket Receiver)> SeqpacketPairAsync()
    {
        string path = Path.Combine(_root, "pair.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var sender = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        await sender.ConnectAsync(new UnixDomainSocketEndPoint(path));
        Socket receiver = listener.Accept();
        return (sender, receiver);
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }
}
