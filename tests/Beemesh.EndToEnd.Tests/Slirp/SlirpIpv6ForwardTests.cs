using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Slirp;

/// <summary>
/// With <c>-6</c>, add_hostfwd may name the guest's IPv6 address as its target. slirp4netns 1.2 refuses
/// it ("bad arguments.guest_addr"), checked here side by side; beemesh-slirp forwards to it.
/// </summary>
[Collection("namespaces")]
public sealed class SlirpIpv6ForwardTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData(SlirpImplementation.Reference)]
    [InlineData(SlirpImplementation.Beemesh)]
    public async Task Forward_to_the_guest_ipv6_address(string implementation)
    {
        await using SlirpSandbox sandbox = await SlirpSandbox.StartAsync(implementation, output, new SlirpSandboxOptions { ExtraArguments = ["-6"] });
        CommandResult address = await sandbox.GuestAsync(
            "for i in $(seq 100); do a=$(ip -6 -o addr show dev tap0 scope global | grep -v tentative | awk '{print $4}' | cut -d/ -f1); " +
            "[ -n \"$a\" ] && { echo $a; exit 0; }; sleep 0.1; done; exit 1", timeoutSeconds: 20);
        Assert.True(address.ExitCode == 0, "no global IPv6 address: " + address);
        string guest6 = address.Stdout.Trim();
        sandbox.StartInGuest("ncat", "-6", "-l", "-k", "8086", "--sh-exec", "echo peer=$NCAT_REMOTE_ADDR");
        await sandbox.WaitForGuestListenerAsync(8086);
        int hostPort = FreeTcpPort();

        string reply = await sandbox.ApiAsync(
            $"{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":{hostPort},\"guest_addr\":\"{guest6}\",\"guest_port\":8086}}}}");

        if (implementation == SlirpImplementation.Reference)
        {
            Assert.Equal("{\"error\":{\"desc\":\"bad request: add_hostfwd: bad arguments.guest_addr\"}}", reply);
            return;
        }

        Assert.Equal("{\"return\":{\"id\":1}}", reply);
        string list = await sandbox.ApiAsync("{\"execute\":\"list_hostfwd\"}");
        Assert.Contains($"\"guest_addr\":\"{guest6}\"", list, StringComparison.Ordinal);
        // An IPv4 client reaches the IPv6 guest from the gateway's IPv6 address.
        Assert.Equal("peer=fd00::2", (await ReadAllFromAsync(IPAddress.Loopback, hostPort)).Trim());
    }

    private static int FreeTcpPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task<string> ReadAllFromAsync(IPAddress a, int port)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var client = new TcpClient(a.AddressFamily);
        await client.ConnectAsync(a, port, limit.Token);
        using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
        return await reader.ReadToEndAsync(limit.Token);
    }
}
