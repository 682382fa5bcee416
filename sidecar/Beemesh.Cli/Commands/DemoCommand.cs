using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Beemesh.Cli.Commands;

/// <summary>
/// <c>beemesh demo</c>: shows the userland stack, then the mesh (see <see cref="MeshDemo"/>), on embedded defaults. It starts a line-echo server
/// on host loopback, then runs a guest in its own network namespace (via <c>beemesh run</c>) that
/// reaches the server through the gateway 10.0.2.2, and publishes a guest port back to the host
/// so that the host reaches the guest. Everything stays on this machine.
/// </summary>
public static class DemoCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var demo = new Command("demo", "Run a guest networked by Beemesh's userland stack against a local server");
        demo.SetAction(_ => Run());
        return demo;
    }

    private static int Run()
    {
        string self = Environment.ProcessPath ?? "beemesh";
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        int port = ((IPEndPoint)server.LocalEndpoint).Port;
        _ = ServeAsync(server);
        Console.WriteLine($"host: echo server on 127.0.0.1:{port}");

        int published = Beemesh.Sidecar.LoopbackPort.Free();
        // The guest: reach the host through the gateway, then serve one line on 8080 for the host.
        string guestScript =
            $"\"{self}\" probe 10.0.2.2 {port} 'hello from the guest' && " +
            $"\"{self}\" demo-serve 8080";
        var psi = new ProcessStartInfo(self)
        {
            ArgumentList = { "run", "-p", $"127.0.0.1:{published}:8080", "--", "sh", "-c", guestScript },
            RedirectStandardOutput = false,
        };
        Console.WriteLine($"guest: beemesh run -p 127.0.0.1:{published}:8080 -- (probe 10.0.2.2:{port}; serve :8080)");
        using var guest = Process.Start(psi)!;

        // Host -> guest through the published port, retried until the guest listens.
        string? answer = null;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (answer is null && DateTime.UtcNow < deadline && !guest.HasExited)
        {
            answer = TryAsk(published, "hello from the host");
            if (answer is null)
            {
                Thread.Sleep(100);
            }
        }

        Console.WriteLine(answer is null ? "host: the published port did not answer" : $"host: 127.0.0.1:{published} answered: {answer}");
        if (!guest.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            guest.Kill(entireProcessTree: true);
        }

        bool ok = answer is not null && guest.ExitCode == 0;
        Console.WriteLine(ok ? "netstack: ok" : $"netstack: failed (guest exit {guest.ExitCode})");
        Console.WriteLine();
        bool meshOk = MeshDemo.RunAsync(self).GetAwaiter().GetResult();
        ok &= meshOk;
        Console.WriteLine(ok ? "demo: ok" : "demo: failed");
        return ok ? 0 : 1;
    }

    private static async Task ServeAsync(TcpListener server)
    {
        while (true)
        {
            var client = await server.AcceptTcpClientAsync();
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    int n = await stream.ReadAsync(buffer);
                    string line = Encoding.UTF8.GetString(buffer, 0, n).TrimEnd();
                    Console.WriteLine($"host: {client.Client.RemoteEndPoint} said '{line}'");
                    await stream.WriteAsync(Encoding.UTF8.GetBytes($"echo: {line}\n"));
                }
            });
        }
    }

    private static string? TryAsk(int port, string text)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            client.ReceiveTimeout = 2000;
            var stream = client.GetStream();
            stream.Write(Encoding.UTF8.GetBytes(text + "\n"));
            var buffer = new byte[4096];
            int n = stream.Read(buffer);
            return n > 0 ? Encoding.UTF8.GetString(buffer, 0, n).TrimEnd() : null;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return null;
        }
    }

}
