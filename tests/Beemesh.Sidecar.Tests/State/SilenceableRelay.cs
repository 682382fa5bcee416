using System.Net;
using System.Net.Sockets;

namespace Beemesh.Sidecar.Tests.State;

/// <summary>
/// A TCP relay on loopback in front of one endpoint. It passes bytes both ways until
/// <see cref="Silence"/>; from then on it passes nothing: connections already made stay open and
/// get no answer, new ones are accepted and get none either, and the target closing its side is
/// not passed on. Peers see what a stopped process or a dropping firewall shows them.
/// </summary>
internal sealed class SilenceableRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly List<Socket> _sockets = [];
    private readonly List<Task> _pumps = [];
    private readonly List<(int Connections, TaskCompletionSource Reached)> _waiters = [];
    private readonly Task _accepting;
    private volatile bool _silent;
    private int _held;

    public SilenceableRelay(IPEndPoint target)
    {
        Target = target;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        EndPoint = (IPEndPoint)_listener.LocalEndpoint;
        _accepting = AcceptAsync();
    }

    /// <summary>Where peers connect.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Where the relay sends what it passes.</summary>
    public IPEndPoint Target { get; }

    /// <summary>Connections that brought bytes after the relay was silenced (bytes it kept).</summary>
    public int Held
    {
        get
        {
            lock (_waiters)
            {
                return _held;
            }
        }
    }

    /// <summary>Stops passing anything, either way, on every connection, present or future.</summary>
    public void Silence() => _silent = true;

    /// <summary>Completes once <paramref name="connections"/> connections brought bytes after the silence.</summary>
    public Task HeldAsync(int connections)
    {
        lock (_waiters)
        {
            if (_held >= connections)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((connections, reached));
            return reached.Task;
        }
    }

    private void CountHeld()
    {
        lock (_waiters)
        {
            _held++;
            foreach ((int connections, TaskCompletionSource reached) in _waiters.Where(w => w.Connections <= _held).ToList())
            {
                reached.TrySetResult();
                _waiters.Remove((connections, reached));
            }
        }
    }

    private void Track(Socket socket, Task? pump = null)
    {
        lock (_sockets)
        {
            _sockets.Add(socket);
            if (pump is not null)
            {
                _pumps.Add(pump);
            }
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                Socket client = await _listener.AcceptSocketAsync();
                Track(client);
                Task serving = ServeAsync(client);
                lock (_sockets)
                {
                    _pumps.Add(serving);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // stopped
        }
    }

    private async Task ServeAsync(Socket client)
    {
        if (_silent)
        {
            await PumpAsync(client, null, fromClient: true);
            return;
        }

        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Track(upstream);
        try
        {
            await upstream.ConnectAsync(Target);
        }
        catch (SocketException)
        {
            client.Dispose();
            return;
        }

        Task up = PumpAsync(client, upstream, fromClient: true);
        Task down = PumpAsync(upstream, client, fromClient: false);
        await Task.WhenAny(up, down);
        if (!_silent)
        {
            client.Dispose();
            upstream.Dispose();
        }

        await Task.WhenAll(up, down);
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/> until silenced; then reads and keeps what comes.</summary>
    private async Task PumpAsync(Socket from, Socket? to, bool fromClient)
    {
        byte[] buffer = new byte[16 * 1024];
        bool counted = false;
        try
        {
            while (true)
            {
                int read = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (_silent || to is null)
                {
                    if (read == 0)
                    {
                        return;
                    }

                    if (fromClient && !counted)
                    {
                        counted = true;
                        CountHeld();
                    }

                    continue;
                }

                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // the connection ended
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        await _accepting;
        Task[] pumps;
        lock (_sockets)
        {
            foreach (Socket socket in _sockets)
            {
                socket.Dispose();
            }

            pumps = [.. _pumps];
        }

        await Task.WhenAll(pumps);
    }
}
