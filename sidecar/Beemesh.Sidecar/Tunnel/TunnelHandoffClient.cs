using System.Net.Sockets;
using System.Text;
using Beemesh.Agent.Client;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// The sidecar's channel to the agent's tunnel handoff socket (<see cref="TunnelHandoff"/>): the
/// node's tunnel port passes this workload's connections over it as descriptors, and each is served
/// as if the tunnel server had accepted it. Without the channel (an agent without the socket, or a
/// refusal) the agent relays the connections to the tunnel endpoint instead.
/// </summary>
public sealed class TunnelHandoffClient : IDisposable
{
    private readonly Socket _channel;
    private readonly Action<Socket> _serve;
    private readonly Action? _agentGone;
    private readonly Thread _thread;
    private long _received;
    private volatile bool _stopping;
    private volatile bool _ended;

    private TunnelHandoffClient(Socket channel, Action<Socket> serve, Action? agentGone)
    {
        _channel = channel;
        _serve = serve;
        _agentGone = agentGone;
        _thread = new Thread(ReceiveLoop) { IsBackground = true, Name = "beemesh tunnel handoff" };
        _thread.Start();
    }

    /// <summary>True while the channel is open: neither disposed nor closed by the agent.</summary>
    public bool IsOpen => !_stopping && !_ended;

    /// <summary>Connections received so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Raised after each received connection was passed to the server (for tests).</summary>
    public event Action? ConnectionReceived;

    /// <summary>
    /// Opens the channel for workload <paramref name="workloadId"/> at the agent in
    /// <paramref name="agentDirectory"/>; <paramref name="serve"/> gets every connection. Null, with
    /// the reason logged, when the agent has no handoff socket or refuses the channel.
    /// <paramref name="agentGone"/> runs once if the agent closes the channel (it stopped or died).
    /// </summary>
    public static async Task<TunnelHandoffClient?> OpenAsync(
        string agentDirectory, string workloadId, Action<Socket> serve, ILogger logger, CancellationToken cancellationToken, Action? agentGone = null)
    {
        ArgumentNullException.ThrowIfNull(serve);
        ArgumentNullException.ThrowIfNull(logger);
        string path = Path.Combine(agentDirectory, TunnelHandoff.SocketName);
        if (!File.Exists(path))
        {
            Log.TunnelHandoffUnavailable(logger, "the agent has no handoff socket");
            return null;
        }

        var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await channel.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token).ConfigureAwait(false);
            await channel.SendAsync(Encoding.UTF8.GetBytes(workloadId), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            byte[] answer = new byte[TunnelHandoff.MaxMessageBytes];
            int length = await channel.ReceiveAsync(answer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            string text = Encoding.UTF8.GetString(answer, 0, length);
            if (text != TunnelHandoff.Accepted)
            {
                Log.TunnelHandoffUnavailable(logger, length == 0 ? "the agent closed the channel" : text);
                channel.Dispose();
                return null;
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            Log.TunnelHandoffUnavailable(logger, e.Message);
            channel.Dispose();
            return null;
        }

        return new TunnelHandoffClient(channel, serve, agentGone);
    }

    private void ReceiveLoop()
    {
        while (!_stopping)
        {
            int? fd;
            try
            {
                fd = TunnelHandoff.Receive(_channel.SafeHandle);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                fd = null;
            }

            if (fd is null)
            {
                // The agent closed the channel: it stopped or died.
                _ended = true;
                if (!_stopping)
                {
                    _agentGone?.Invoke();
                }

                return;
            }

            if (fd < 0)
            {
                continue;
            }

            Socket socket;
            try
            {
                socket = new Socket(new SafeSocketHandle(fd.Value, ownsHandle: true));
            }
            catch (SocketException)
            {
                continue; // not a socket: the SafeSocketHandle closed it
            }

            Interlocked.Increment(ref _received);
            if (_stopping)
            {
                socket.Dispose();
                return;
            }

            _serve(socket);
            ConnectionReceived?.Invoke();
        }
    }

    /// <summary>Closes the channel; connections still queued in it are closed with it.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        try
        {
            _channel.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        // The agent-gone callback may dispose the client (or code it completes may run on this
        // thread): joining itself would wait forever, and the loop ends on its own after the callback.
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        _channel.Dispose();
    }
}
