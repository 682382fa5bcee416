using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>Guest UDP to a host loopback service through the gateway.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class UdpTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Datagrams_to_a_host_echo_service_come_back_byte_exact()
    {
        BeemeshEnvironment.RequireReady("python3");
        await using var server = new UdpEchoServer();
        using var files = new GuestFiles();
        string client = files.Write("udp_echo.py", GuestPrograms.UdpEcho);

        var result = await BeemeshRun.RunAsync(["--debug"], $"python3 {client} 10.0.2.2 {server.EndPoint.Port} 25", TimeSpan.FromSeconds(60));

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("udp-ok 25\n", result.Stdout, StringComparison.Ordinal);
        Assert.True(server.Datagrams >= 25);
        Assert.True(result.Counter("udp_datagrams_out_total") >= 25, result.CounterSummary());
        Assert.True(result.Counter("udp_datagrams_in_total") >= 25, result.CounterSummary());
    }
}
