using System.Net;
using System.Net.Sockets;
using Beemesh.LoadTests.Bench;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// An echo server on 0.0.0.0 (inside a guest, where the sidecar connects to the guest address)
/// or on 127.0.0.1 (on the host); echoes every byte until the peer closes, each connection on a
/// thread of its own (<see cref="BlockingEcho"/>).
/// </summary>
public static class EchoServer
{
    /// <summary>Serves until <paramref name="cancellationToken"/> fires.</summary>
    public static async Task<int> RunAsync(IPAddress bind, int port, CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(bind, port));
        listener.Listen(4096);
        Console.Out.WriteLine($"echo-server listening on {bind}:{port}");
        Console.Out.Flush();
        try
        {
            while (true)
            {
                Socket socket = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                _ = BlockingEcho.Start(socket);
            }
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }
}
