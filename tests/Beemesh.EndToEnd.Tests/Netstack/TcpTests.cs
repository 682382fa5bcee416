using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Beemesh.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Beemesh.EndToEnd.Tests.Netstack;

/// <summary>Guest TCP to host loopback services through the gateway 10.0.2.2.</summary>
[Collection(NamespacesCollection.Name)]
public sealed class TcpTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [SkippableFact]
    public async Task Request_to_a_host_loopback_service_through_the_gateway_gets_its_reply()
    {
        BeemeshEnvironment.RequireReady("python3");
        await using var server = new TcpEchoServer();
        using var files = new GuestFiles();
        string client = files.Write("tcp_client.py", GuestPrograms.TcpClient);

        var result = await BeemeshRun.RunAsync([], $"python3 {client} 10.0.2.2 {server.EndPoint.Port} 'hello from the guest'", Timeout);

        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("reply:hello from the guest\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, server.Accepted);
    }

    [SkippableFact]
    public async Task Connecting_to_a_closed_host_port_is_refused_at_once()
    {
        BeemeshEnvironment.RequireReady("python3");
        // Bound but not listening: the port stays closed and nobody else can take it meanwhile.
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)closed.LocalEndPoint!).Port;
        using var files = new GuestFiles();
        string client = files.Write("tcp_client.py", GuestPrograms.TcpClient);

        var result = await BeemeshRun.RunAsync(["--debug"], $"python3 {client} 10.0.2.2 {port} nobody", Timeout);

        output.WriteLine(result.ToString());
        Assert.Equal(3, result.ExitCode); // ConnectionRefusedError, not a timeout (4)
        var match = Regex.Match(result.Stdout, @"refused (\d+)");
        Assert.True(match.Success, result.ToString());
        Assert.True(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < 2000, "the refusal must be immediate: " + match.Value + " ms");
        Assert.True(result.Counter("tcp_connect_failures_total") >= 1, result.CounterSummary());
    }

    [SkippableFact]
    public async Task Many_short_connections_to_a_server_that_closes_at_once_all_complete()
    {
        BeemeshEnvironment.RequireReady("python3");
        // The server accepts and closes immediately, so its EOF often arrives together with the
        // connect completion: every connection must still end with the guest seeing EOF.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(512);
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var c = await listener.AcceptSocketAsync(stop.Token);
            }
        });
        using var files = new GuestFiles();
        string client = files.Write("short_connections.py", """
            import socket, sys, time
            n = int(sys.argv[2]); t0 = time.time()
            for i in range(n):
                c = socket.create_connection(("10.0.2.2", int(sys.argv[1])), timeout=5)
                if c.recv(1) != b"":
                    sys.exit(2)
                c.close()
            print("done", n, round(n / (time.time() - t0)))
            """);

        var result = await BeemeshRun.RunAsync([], $"python3 {client} {port} 2000", Timeout);

        await stop.CancelAsync();
        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("done 2000", result.Stdout, StringComparison.Ordinal);
    }
}
