using System.Net;
using System.Net.Sockets;

namespace Beemesh.LoadTests.Clients;

/// <summary>
/// Opens many TCP connections and keeps them open until its standard input closes, so the
/// harness can measure the memory the stack spends per connection.
/// </summary>
public static class HoldClient
{
    /// <summary>
    /// Opens <paramref name="count"/> connections (64 at a time), sends one byte on each so the
    /// flow is fully established end to end, prints <c>ready OPEN FAILED</c> and waits for EOF on stdin.
    /// </summary>
    public static async Task<int> RunAsync(IPAddress host, int port, int count, TextWriter output, CancellationToken cancellationToken)
    {
        var endpoint = new IPEndPoint(host, port);
        var sockets = new List<Socket>(count);
        int failed = 0;
        string? firstError = null;
        try
        {
            for (int opened = 0; opened < count;)
            {
                int batch = Math.Min(64, count - opened);
                var tasks = new Task<Socket?>[batch];
                for (int i = 0; i < batch; i++)
                {
                    tasks[i] = OpenAsync(endpoint, cancellationToken);
                }

                foreach (Task<Socket?> task in tasks)
                {
                    try
                    {
                        Socket? socket = await task.ConfigureAwait(false);
                        if (socket is not null)
                        {
                            sockets.Add(socket);
                        }
                    }
                    catch (Exception ex) when (ex is SocketException or OperationCanceledException)
                    {
                        failed++;
                        firstError ??= ex.Message;
                    }
                }

                opened += batch;
            }

            await output.WriteLineAsync($"ready {sockets.Count} {failed} {firstError}".TrimEnd()).ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private static async Task<Socket?> OpenAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
            await socket.SendAsync(new byte[] { 1 }, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
