using System.Net.Sockets;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// Echoes one connection on a thread of its own with blocking calls: a request costs the server
/// one wake-up (the receive) and no hand-off between pool threads, so on a busy machine the
/// latency benchmarks measure the path under test rather than the echo server's scheduling.
/// </summary>
internal static class BlockingEcho
{
    /// <summary>Starts echoing <paramref name="socket"/>; the task ends (and the socket is disposed) when the peer closes or fails.</summary>
    public static Task Start(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Serve(socket);
            }
            finally
            {
                done.TrySetResult();
            }
        })
        {
            IsBackground = true,
            Name = "echo",
        };
        thread.Start();
        return done.Task;
    }

    private static void Serve(Socket socket)
    {
        socket.NoDelay = true;
        byte[] buffer = new byte[4096];
        using (socket)
        {
            try
            {
                while (true)
                {
                    int read = socket.Receive(buffer);
                    if (read == 0)
                    {
                        return;
                    }

                    int sent = 0;
                    while (sent < read)
                    {
                        sent += socket.Send(buffer, sent, read - sent, SocketFlags.None);
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
