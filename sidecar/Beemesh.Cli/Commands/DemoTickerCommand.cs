using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh demo-ticker PORT</c> (hidden): the mesh demo's server. Greets each connection with the
/// address it came from, then writes a tick every 200 ms until the connection ends.
/// </summary>
public static class DemoTickerCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var port = new Argument<int>("port");
        var ticker = new Command("demo-ticker", "Greet connections, then tick") { port };
        ticker.Hidden = true;
        ticker.SetAction(async (parse, cancel) =>
        {
            using var listener = new TcpListener(IPAddress.Any, parse.GetValue(port));
            listener.Start();
            while (!cancel.IsCancellationRequested)
            {
                var client = await listener.AcceptTcpClientAsync(cancel);
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        try
                        {
                            var stream = client.GetStream();
                            await stream.WriteAsync(Encoding.UTF8.GetBytes($"hello from api, you came from {client.Client.RemoteEndPoint}\n"), cancel);
                            for (int i = 1; !cancel.IsCancellationRequested; i++)
                            {
                                await Task.Delay(200, cancel);
                                await stream.WriteAsync(Encoding.UTF8.GetBytes($"tick {i}\n"), cancel);
                            }
                        }
                        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
                        {
                            // the caller left, or was cut off
                        }
                    }
                }, cancel);
            }

            return 0;
        });
        return ticker;
    }
}
