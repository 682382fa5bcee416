using Beemesh.EndToEnd.Tests.Support;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Podman;

/// <summary>
/// Rootless podman with Beemesh as its network command (network_cmd_path): the container reaches
/// a host service through 10.0.2.2, and `podman run -p` publishes a container port to the host,
/// through podman's own port handler and through the slirp4netns API socket.
/// </summary>
[Collection("namespaces")]
public sealed class RootlessPodmanTests(PodmanEnvironment env, ITestOutputHelper output) : IClassFixture<PodmanEnvironment>
{
    [SkippableFact]
    public async Task ContainerReachesHostLoopbackServiceThroughGateway()
    {
        Skip.If(env.SkipReason is not null, env.SkipReason);
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        int port = ((IPEndPoint)server.LocalEndpoint).Port;
        var serving = ServeHttpOnceAsync(server, "hello-from-host");

        var (code, text) = env.AsUser(
            $"podman run --rm --network slirp4netns:allow_host_loopback=true --rootfs {env.RootFs} wget -q -O - http://10.0.2.2:{port}/");
        output.WriteLine(text);
        Assert.Equal(0, code);
        Assert.Contains("hello-from-host", text);
        Assert.True(serving.Wait(TimeSpan.FromSeconds(5)));
        Assert.Contains("--netns-type=path", File.ReadAllText(env.ArgumentLog!)); // podman really ran our binary
    }

    [SkippableTheory]
    [InlineData("rootlesskit")]
    [InlineData("slirp4netns")]
    public void PublishedContainerPortAnswersOnTheHost(string portHandler)
    {
        Skip.If(env.SkipReason is not null, env.SkipReason);
        int port = HostWaits.FreeLoopbackPort();
        string name = $"beemesh-web-{portHandler}-{port}";
        var (code, text) = env.AsUser(
            $"podman run -d --name {name} -p 127.0.0.1:{port}:8080 --network slirp4netns:port_handler={portHandler} " +
            $"--rootfs {env.RootFs} httpd -f -p 8080 -h /www");
        output.WriteLine(text);
        Assert.Equal(0, code);
        try
        {
            string? body = null;
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (body is null && DateTime.UtcNow < deadline)
            {
                body = TryGet(port);
                if (body is null)
                {
                    Thread.Sleep(200);
                }
            }

            Assert.NotNull(body);
            Assert.Contains("served-by-container", body);
        }
        finally
        {
            env.AsUser($"podman rm -f {name}");
        }
    }

    private static async Task ServeHttpOnceAsync(TcpListener server, string body)
    {
        using var client = await server.AcceptTcpClientAsync();
        var stream = client.GetStream();
        var buffer = new byte[4096];
        _ = await stream.ReadAsync(buffer); // one read: the request fits; its content does not matter
        string response = $"HTTP/1.0 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(response));
    }

    private static string? TryGet(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            client.ReceiveTimeout = 3000;
            var stream = client.GetStream();
            stream.Write(Encoding.ASCII.GetBytes("GET /index.html HTTP/1.0\r\n\r\n"));
            using var reader = new StreamReader(stream);
            string all = reader.ReadToEnd();
            return all.Length > 0 ? all : null;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return null;
        }
    }

}
