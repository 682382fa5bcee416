using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>The stack answers pings to its own addresses (gateway and DNS) itself.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class IcmpTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Pings_to_the_gateway_and_the_dns_address_are_answered()
    {
        BeemeshEnvironment.RequireReady("busybox");

        var result = await BeemeshRun.RunAsync(
            ["--debug"],
            "busybox ping -c 3 -W 2 10.0.2.2 && busybox ping -c 3 -W 2 -s 1000 10.0.2.3",
            TimeSpan.FromSeconds(60));

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("--- 10.0.2.2 ping statistics ---\n3 packets transmitted, 3 packets received, 0% packet loss", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("--- 10.0.2.3 ping statistics ---\n3 packets transmitted, 3 packets received, 0% packet loss", result.Stdout, StringComparison.Ordinal);
        Assert.True(result.Counter("icmp_echo_answered_total") >= 6, result.CounterSummary());
    }
}
