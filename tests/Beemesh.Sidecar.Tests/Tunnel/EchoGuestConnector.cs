using System.Net;
using System.Net.Sockets;
using Beemesh.Sidecar.Inbound;

namespace Beemesh.Sidecar.Tests.Tunnel;

/// <summary>
/// A workload stand-in: a loopback TCP echo server (echoes until the peer's FIN, then FINs back),
/// and an <see cref="IGuestConnector"/> that dials it. Guest port <see cref="GreetingPort"/> instead
/// sends <see cref="Greeting"/> and half-closes at once. Records how each server-side connection ended.
/// </summary>
internal sealed class EchoGuestConnector : IGuestConnector, IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public EchoGuestConnector()
    {
        _listener.Start();
        _loop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>How each echo connection ended: "fin" or the socket error (e.g. ConnectionReset).</summary>
    public const int GreetingPort = 13;

    public const string Greeting = "hello from the workload";

    public System.Collections.Concurrent.ConcurrentQueue<string> Endings { get; } = new();

    /// <summary>The same endings as <see cref="Endings"/>, to wait on.</summary>
    public System.Threading.Channels.Channel<string> EndingFeed { get; } = System.Threading.Channels.Channel.CreateUnbounded<string>();

    public List<(IPAddress Caller, int Port)> Calls { get; } = [];

    public async Task<Stream> ConnectAsync(IPAddress callerMeshAddress, int guestPort, CancellationToken cancellationToken = default)
    {
        lock (Calls)
        {
            Calls.Add((callerMeshAddress, guestPort));
        }

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(_listener.LocalEndpoint, cancellationToken);
        // The first byte tells the server which behaviour this connection wants.
        await socket.SendAsync(new[] { (byte)(guestPort == GreetingPort ? 'g' : 'e') }, SocketFlags.None, cancellationToken);
        return new NetworkStream(socket, ownsSocket: true);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception)
        {
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket = await _listener.AcceptSocketAsync(_stop.Token);
            _ = Task.Run(() => EchoAsync(socket));
        }
    }

    private async Task EchoAsync(Socket socket)
    {
        using (socket)
        {
            byte[] buffer = new byte[16384];
            try
            {
                int mode = await socket.ReceiveAsync(buffer.AsMemory(0, 1), SocketFlags.None);
                if (mode == 1 && buffer[0] == (byte)'g')
                {
                    await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(Greeting), SocketFlags.None);
                    socket.Shutdown(SocketShutdown.Send);
                }

                while (true)
                {
                    int read = await socket.ReceiveAsync(buffer, SocketFlags.None);
                    if (read == 0)
                    {
                        Endings.Enqueue("fin");
                        EndingFeed.Writer.TryWrite("fin");
                        return;
                    }

                    if (mode == 1 && buffer[0] == (byte)'g')
                    {
                        continue;
                    }

                    await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
                }
            }
            catch (SocketException e)
            {
                Endings.Enqueue(e.SocketErrorCode.ToString());
                EndingFeed.Writer.TryWrite(e.SocketErrorCode.ToString());
            }
        }
    }
}
