using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>Many TCP flows at once through the stack.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class ConcurrentConnectionTests(ITestOutputHelper output)
{
    private const int Connections = 1000;

    [SkippableFact]
    public async Task A_thousand_simultaneous_connections_each_echo_their_own_line()
    {
        BeemeshEnvironment.RequireReady("python3");
        await using var server = new TcpEchoServer();
        using var files = new GuestFiles();
        string client = files.Write("many_connections.py", GuestPrograms.ManyConnections);

        var result = await BeemeshRun.RunAsync(["--debug"], $"python3 {client} 10.0.2.2 {server.EndPoint.Port} {Connections}", TimeSpan.FromSeconds(120));

        output.WriteLine(result.ToString());
        output.WriteLine($"host server: accepted {server.Accepted}, at most {server.MaxOpen} open at once");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"connected {Connections}\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains($"echoed {Connections}\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(Connections, server.Accepted);
        Assert.Equal(Connections, server.MaxOpen);
        Assert.True(result.Counter("tcp_flows_opened_total") >= Connections, result.CounterSummary());
    }
}
