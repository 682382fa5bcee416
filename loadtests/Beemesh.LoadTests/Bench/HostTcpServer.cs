using System.Net;
using System.Net.Sockets;

namespace Beemesh.LoadTests.Bench;

/// <summary>
/// A TCP server on the host's 127.0.0.1 (never another address) with a per-connection behaviour;
/// the namespaces reach it through their stack's host-loopback mapping.
/// </summary>
internal sealed class HostTcpServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<Socket, CancellationToken, Task> _handle;
    private readonly Task _acceptLoop;
    private long _accepted;

    private HostTcpServer(Func<Socket, CancellationToken, Task> handle)
    {
        _handle = handle;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4096);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Accepts and closes at once: the client sees the FIN right after its handshake.</summary>
    public static HostTcpServer AcceptAndClose() => new(static (socket, _) =>
    {
        socket.Dispose();
        return Task.CompletedTask;
    });

    /// <summary>Echoes every byte back, each connection on a thread of its own (<see cref="BlockingEcho"/>).</summary>
    public static HostTcpServer Echo() => new(static (socket, token) =>
    {
        CancellationTokenRegistration stop = token.Register(socket.Dispose);
        return BlockingEcho.Start(socket).ContinueWith(_ => stop.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    });

    /// <summary>Keeps every connection open until the peer closes or the server stops.</summary>
    public static HostTcpServer Hold() => new(static async (socket, token) =>
    {
        byte[] buffer = new byte[64];
        using (socket)
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, token).ConfigureAwait(false) > 0)
            {
            }
        }
    });

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            _ = Task.Run(
                async () =>
                {
                    try
                    {
                        await _handle(socket, token).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                    {
                        socket.Dispose();
                    }
                },
                CancellationToken.None);
        }
    }
}
