using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>The built-in DHCP server hands out the slirp lease.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class DhcpTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Udhcpc_obtains_the_first_lease_with_the_gateway_and_dns_addresses()
    {
        BeemeshEnvironment.RequireReady("busybox");
        using var files = new GuestFiles();
        // udhcpc runs this with the event ("bound") as $1 and the lease in the environment; it
        // only prints, so the interface keeps its address.
        string script = files.Write("lease.sh", "#!/bin/sh\necho \"lease $1 ip=$ip mask=$subnet router=$router dns=$dns\"\n");

        var result = await BeemeshRun.RunAsync(
            ["--debug"],
            $"busybox udhcpc -i tap0 -n -q -f -t 5 -T 2 -s {script}",
            TimeSpan.FromSeconds(60));

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("lease bound ip=10.0.2.15 mask=255.255.255.0 router=10.0.2.2 dns=10.0.2.3\n", result.Stdout, StringComparison.Ordinal);
        Assert.True(result.Counter("dhcp_replies_total") >= 2, result.CounterSummary()); // OFFER and ACK
    }
}
