using System.CommandLine;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh probe tcp HOST PORT [TEXT]</c>: connects, sends one line, prints what comes back and
/// the local and remote addresses. A dependency-free client for demos and checks inside a guest.
/// </summary>
public static class ProbeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var host = new Argument<string>("host") { Description = "Address or name to connect to" };
        var port = new Argument<int>("port") { Description = "TCP port" };
        var text = new Argument<string>("text") { Description = "Line to send", DefaultValueFactory = _ => "hello" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the answer", DefaultValueFactory = _ => 5 };
        var probe = new Command("probe", "Connect to HOST:PORT, send a line and print the answer (for demos and checks)")
        {
            host, port, text, timeout,
        };
        probe.SetAction(parse => Run(parse.GetValue(host)!, parse.GetValue(port), parse.GetValue(text)!, parse.GetValue(timeout)));
        return probe;
    }

    private static int Run(string host, int port, string text, double timeoutSeconds)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
            using var client = new TcpClient();
            client.ConnectAsync(host, port, cts.Token).AsTask().GetAwaiter().GetResult();
            var stream = client.GetStream();
            stream.Write(Encoding.UTF8.GetBytes(text + "\n"));
            var buffer = new byte[4096];
            int n = stream.ReadAsync(buffer, cts.Token).AsTask().GetAwaiter().GetResult();
            Console.WriteLine($"{client.Client.LocalEndPoint} -> {client.Client.RemoteEndPoint}: {Encoding.UTF8.GetString(buffer, 0, n).TrimEnd()}");
            return 0;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            Console.Error.WriteLine($"beemesh probe: {host}:{port}: {e.Message}");
            return 1;
        }
    }
}
