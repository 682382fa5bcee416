using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// A UDP datagram larger than the MTU leaves the guest as IPv4 fragments; slirp4netns and
/// beemesh-slirp must put it back together for the host socket (and bring the echo back).
/// </summary>
[Collection("namespaces")]
public sealed class SlirpFragmentTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Fragmented_udp_datagram_reaches_the_host_whole(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output);
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        var received = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Task server = Task.Run(async () =>
        {
            UdpReceiveResult r = await udp.ReceiveAsync(stop.Token);
            received.TrySetResult(r.Buffer);
            await udp.SendAsync(r.Buffer.Reverse().ToArray(), r.RemoteEndPoint, stop.Token);
        });

        // 4000 bytes at MTU 1500: the guest kernel sends three fragments.
        CommandResult r = await sandbox.GuestAsync(
            "python3 - <<'EOF'\n" +
            "import socket\n" +
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
            "s.settimeout(5)\n" +
            "data = bytes((i * 7) % 251 for i in range(4000))\n" +
            $"s.sendto(data, ('10.0.2.2', {port}))\n" +
            "reply = s.recv(65535)\n" +
            "print('echo-ok' if reply == data[::-1] else 'echo-wrong %d' % len(reply))\n" +
            "EOF", timeoutSeconds: 20);

        byte[] datagram = await received.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(Enumerable.Range(0, 4000).Select(i => (byte)(i * 7 % 251)).ToArray(), datagram);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("echo-ok", r.Stdout.Trim());
        await server;
    }
}
