using System.Net;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>The DNS forwarder at 10.0.2.3 relays to the upstream named by BEEMESH_DNS_UPSTREAM.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class DnsTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Nslookup_through_the_forwarder_resolves_an_a_record_over_udp()
    {
        BeemeshEnvironment.RequireReady("busybox");
        await using var dns = new LoopbackDnsServer();
        dns.AddA("web.e2e.test", IPAddress.Parse("192.0.2.44"));

        var result = await BeemeshRun.RunAsync(
            [],
            "busybox nslookup -type=a web.e2e.test 10.0.2.3",
            TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["BEEMESH_DNS_UPSTREAM"] = dns.EndPoint.ToString() });

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Address: 192.0.2.44", result.Stdout, StringComparison.Ordinal);
        Assert.True(dns.UdpQueryCount >= 1, $"udp queries {dns.UdpQueryCount}");
        Assert.Contains("web.e2e.test", dns.QueriedNames);
    }

    [SkippableFact]
    public async Task A_query_over_tcp_to_the_forwarder_reaches_the_upstream_over_tcp()
    {
        BeemeshEnvironment.RequireReady("python3");
        await using var dns = new LoopbackDnsServer();
        dns.AddA("tcp.e2e.test", IPAddress.Parse("192.0.2.45"));
        using var files = new GuestFiles();
        string client = files.Write("dns_tcp.py", GuestPrograms.DnsOverTcp);

        var result = await BeemeshRun.RunAsync(
            [],
            $"python3 {client} 10.0.2.3 tcp.e2e.test",
            TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["BEEMESH_DNS_UPSTREAM"] = dns.EndPoint.ToString() });

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("tcp-dns 0 192.0.2.45\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, dns.TcpQueryCount);
    }
}
