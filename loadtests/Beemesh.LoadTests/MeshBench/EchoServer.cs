using System.Net;
using System.Net.Sockets;

namespace Beemesh.LoadTests.MeshBench;

/// <summary>
/// An echo server on 0.0.0.0 (inside a guest, where the sidecar connects to the guest address)
/// or on 127.0.0.1 (on the host); echoes every byte until the peer closes.
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
                _ = Task.Run(() => ServeAsync(socket, cancellationToken), CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    private static async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        socket.NoDelay = true;
        byte[] buffer = new byte[4096];
        using (socket)
        {
            try
            {
                while (true)
                {
                    int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return;
                    }

                    await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (SocketException)
            {
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
