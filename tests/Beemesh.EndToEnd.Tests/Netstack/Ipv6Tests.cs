using System.Net;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>With <c>-6</c>: SLAAC from the stack's router advertisement, ping and TCP to host ::1 via fd00::2.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class Ipv6Tests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task After_slaac_the_gateway_answers_ping_and_reaches_host_ipv6_loopback()
    {
        BeemeshEnvironment.RequireReady("python3", "busybox", "ip");
        await using var server = new TcpEchoServer(IPAddress.IPv6Loopback);
        using var files = new GuestFiles();
        string client = files.Write("tcp_client.py", GuestPrograms.TcpClient);
        string script = $$"""
            i=0
            until ip -6 addr show dev tap0 scope global | grep -q 'inet6 fd00:' && ! ip -6 addr show dev tap0 | grep -q tentative; do
              i=$((i+1)); [ $i -gt 100 ] && { echo 'no SLAAC address'; ip -6 addr; exit 9; }
              sleep 0.1
            done
            ip -6 addr show dev tap0 scope global
            busybox ping -6 -c 3 -W 2 fd00::2 || exit 10
            python3 {{client}} fd00::2 {{server.EndPoint.Port}} 'hello over ipv6'
            """;

        var result = await BeemeshRun.RunAsync(["-6", "--debug"], script, TimeSpan.FromSeconds(60));

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"inet6 fd00::[0-9a-f:]+/64 scope global", result.Stdout);
        Assert.Contains("3 packets transmitted, 3 packets received, 0% packet loss", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("reply:hello over ipv6\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, server.Accepted);
    }
}
