using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Beemesh.Identity.Join;

namespace Beemesh.Identity.Tests.Join;

/// <summary>
/// Serves a <see cref="JoinServer"/> on a loopback port for join and renewal tests: every accepted
/// connection goes to the server, and each connection's outcome can be awaited in order.
/// </summary>
internal sealed class JoinServerHarness : IAsyncDisposable
{
    /// <summary>Caps every wait of the tests, so a broken exchange fails instead of hanging.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly JoinServer _server;
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Channel<JoinServerResult> _results = Channel.CreateUnbounded<JoinServerResult>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;

    public JoinServerHarness(JoinServer server)
    {
        _server = server;
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The port the server is reached at.</summary>
    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>The server's outcome for the next connection it finished.</summary>
    public async Task<JoinServerResult> NextResultAsync() => await _results.Reader.ReadAsync().AsTask().WaitAsync(Guard);

    /// <summary>Stops listening (the node goes away); connections already accepted finish.</summary>
    public void StopListening() => _listener.Stop();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await Task.WhenAny(_acceptLoop, Task.Delay(Guard));
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    JoinServerResult result = await _server.AcceptAsync(new NetworkStream(socket, ownsSocket: false), _stop.Token);
                    _results.Writer.TryWrite(result);
                }
            });
        }
    }
}
