using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>Many TCP flows at once through the stack.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class ConcurrentConnectionTests(ITestOutputHelper output)
{
    [SkippableFact]
    public Task A_thousand_simultaneous_connections_each_echo_their_own_line() => EachEchoesItsOwnLineAsync(1000);

    /// <summary>
    /// Twice the bench's hold test: more flows at once than the stack's pending-connect limit (1,024),
    /// so connects complete while others still wait for the host.
    /// </summary>
    [SkippableFact]
    public Task Two_thousand_simultaneous_connections_each_echo_their_own_line() => EachEchoesItsOwnLineAsync(2000);

    private async Task EachEchoesItsOwnLineAsync(int connections)
    {
        BeemeshEnvironment.RequireReady("python3");
        await using var server = new TcpEchoServer();
        using var files = new GuestFiles();
        string client = files.Write("many_connections.py", GuestPrograms.ManyConnections);

        var result = await BeemeshRun.RunAsync(["--debug"], $"python3 {client} 10.0.2.2 {server.EndPoint.Port} {connections}", TimeSpan.FromSeconds(120 + (connections / 20)));

        output.WriteLine(result.ToString());
        output.WriteLine($"host server: accepted {server.Accepted}, at most {server.MaxOpen} open at once");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"connected {connections}\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains($"echoed {connections}\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(connections, server.Accepted);
        Assert.Equal(connections, server.MaxOpen);
        Assert.True(result.Counter("tcp_flows_opened_total") >= connections, result.CounterSummary());
    }
}
