using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh demo-serve PORT</c> (hidden): accepts one connection, answers its line with the
/// peer's address as the guest saw it, and exits. The guest half of <c>beemesh demo</c>.
/// </summary>
public static class DemoServeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var port = new Argument<int>("port");
        var serve = new Command("demo-serve", "Answer one connection with the peer's address") { port };
        serve.Hidden = true;
        serve.SetAction(parse =>
        {
            using var listener = new TcpListener(IPAddress.Any, parse.GetValue(port));
            listener.Start();
            using var client = listener.AcceptTcpClient();
            var stream = client.GetStream();
            var buffer = new byte[4096];
            int n = stream.Read(buffer);
            string line = Encoding.UTF8.GetString(buffer, 0, n).TrimEnd();
            Console.WriteLine($"guest: {client.Client.RemoteEndPoint} said '{line}'");
            stream.Write(Encoding.UTF8.GetBytes($"guest saw you as {client.Client.RemoteEndPoint}\n"));
            return 0;
        });
        return serve;
    }
}
