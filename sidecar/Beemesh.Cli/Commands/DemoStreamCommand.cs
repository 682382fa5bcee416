using System.CommandLine;
using System.Diagnostics;
using System.Net.Sockets;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh demo-stream HOST PORT</c> (hidden): reads lines from HOST:PORT until the connection
/// ends, printing each, then how and after how long it ended.
/// </summary>
public static class DemoStreamCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var host = new Argument<string>("host");
        var port = new Argument<int>("port");
        var stream = new Command("demo-stream", "Print lines until the connection ends") { host, port };
        stream.Hidden = true;
        stream.SetAction(async (parse, cancel) =>
        {
            var clock = Stopwatch.StartNew();
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(parse.GetValue(host)!, parse.GetValue(port), cancel);
                using var reader = new StreamReader(client.GetStream());
                while (await reader.ReadLineAsync(cancel) is { } line)
                {
                    Console.WriteLine($"web: {line}");
                }

                Console.WriteLine($"web: stream closed by the peer after {clock.Elapsed.TotalSeconds:F1} s");
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                Console.WriteLine($"web: stream cut after {clock.Elapsed.TotalSeconds:F1} s ({e.GetBaseException().Message})");
            }

            return 0;
        });
        return stream;
    }
}
