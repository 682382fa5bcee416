using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Beemesh.Agent.Client;
using Beemesh.Identity.Attestation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Agent.Tunnel;

/// <summary>
/// The agent's end of <see cref="TunnelHandoff"/>: a unix seqpacket socket where each sidecar opens
/// a channel for its workload, over which the tunnel port then passes that workload's connections
/// as descriptors. A channel is accepted only from the process that registered the workload
/// (SO_PEERCRED checked by <c>authorize</c>), so no other process, a workload included, can receive
/// a workload's connections. One channel per workload: a second one is refused while the first is open.
/// </summary>
public sealed class TunnelHandoffServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Func<string, int, string?> _authorize;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Channel> _channels = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _accepting;

    /// <summary>
    /// Listens at <paramref name="path"/> (replacing a stale socket file), reachable by its owner
    /// only. <paramref name="authorize"/> gets a workload id and the connecting pid and returns null
    /// when that process may receive the workload's connections, else the reason it may not.
    /// </summary>
    public TunnelHandoffServer(string path, Func<string, int, string?> authorize, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _authorize = authorize ?? throw new ArgumentNullException(nameof(authorize));
        _logger = logger ?? NullLogger.Instance;
        File.Delete(path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _listener.Listen(64);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }

        Path = path;
    }

    /// <summary>Where the server listens.</summary>
    public string Path { get; }

    /// <summary>Open channels, one per workload at most.</summary>
    public int Channels => _channels.Count;

    /// <summary>Counters by name: <c>channels_accepted</c>, <c>channels_refused</c>, <c>channels_malformed</c>, <c>channel_send_failed</c>.</summary>
    public IReadOnlyDictionary<string, long> Counters => _counters;

    /// <summary>Starts accepting channels.</summary>
    public void Start() => _accepting = Task.Run(AcceptLoopAsync);

    /// <summary>Raised with the workload id whenever a channel is opened or closed (for tests and metrics).</summary>
    public event Action<string>? ChannelsChanged;

    /// <summary>
    /// Passes <paramref name="connection"/> to the sidecar of workload <paramref name="workloadId"/>;
    /// true when it was sent (the caller then closes only its own descriptor), false when that
    /// workload has no channel or the send failed (a broken channel is dropped).
    /// </summary>
    public bool TrySend(string workloadId, Socket connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (workloadId is null || !_channels.TryGetValue(workloadId, out Channel? channel))
        {
            return false;
        }

        int errno = TunnelHandoff.Send(channel.Socket.SafeHandle, connection.SafeHandle);
        if (errno == 0)
        {
            return true;
        }

        Count("channel_send_failed");
        const int Eagain = 11;
        if (errno != Eagain)
        {
            // The sidecar went away: later connections are relayed until it opens a new channel.
            Drop(workloadId, channel);
        }

        return false;
    }

    private void Count(string name) => _counters.AddOrUpdate(name, 1, static (_, v) => v + 1);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        string? id = null;
        Channel? channel = null;
        try
        {
            byte[] message = new byte[TunnelHandoff.MaxMessageBytes];
            int length;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
            {
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                length = await socket.ReceiveAsync(message, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            }

            id = length > 0 ? Encoding.UTF8.GetString(message, 0, length).Trim() : string.Empty;
            PeerCredentials? peer = PeerCredentials.FromSocket(socket);
            string? refusal = id.Length == 0 || id.Length > 128 ? "no workload id"
                : peer is null ? "no peer credentials"
                : _authorize(id, peer.Value.ProcessId);
            if (refusal is not null)
            {
                Count(id.Length == 0 ? "channels_malformed" : "channels_refused");
                TunnelHandoffLog.Refused(_logger, peer?.ProcessId ?? 0, id, refusal);
                await socket.SendAsync(Encoding.UTF8.GetBytes("refused: " + refusal), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                return;
            }

            // Stored before the answer, so a sidecar that reads it is taking connections already.
            var opened = new Channel(socket);
            if (!_channels.TryAdd(id, opened))
            {
                // The open one stays: the registering process opened it and closes it when it ends.
                Count("channels_refused");
                TunnelHandoffLog.Refused(_logger, peer!.Value.ProcessId, id, "a channel for it is open already");
                await socket.SendAsync("refused: a channel for it is open already"u8.ToArray(), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                return;
            }

            channel = opened;
            Count("channels_accepted");
            ChannelsChanged?.Invoke(id);
            await socket.SendAsync(Encoding.UTF8.GetBytes(TunnelHandoff.Accepted), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            // The sidecar sends nothing more: a read ends when it closes the channel.
            while (await socket.ReceiveAsync(message, SocketFlags.None, _stop.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            if (id is not null && channel is not null)
            {
                Drop(id, channel);
            }

            socket.Dispose();
        }
    }

    private void Drop(string id, Channel channel)
    {
        if (_channels.TryRemove(new KeyValuePair<string, Channel>(id, channel)))
        {
            channel.Socket.Dispose();
            ChannelsChanged?.Invoke(id);
        }
    }

    /// <summary>Stops accepting and closes every channel.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(false);
        }

        foreach (Channel channel in _channels.Values)
        {
            channel.Socket.Dispose();
        }

        _channels.Clear();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }

        _stop.Dispose();
    }

    private sealed class Channel(Socket socket)
    {
        public Socket Socket => socket;
    }
}

/// <summary>Log lines of the tunnel handoff socket.</summary>
internal static partial class TunnelHandoffLog
{
    [LoggerMessage(EventId = 4310, Level = LogLevel.Warning, Message = "tunnel handoff: channel of process {Pid} for workload {Workload} refused: {Reason}")]
    public static partial void Refused(ILogger logger, int pid, string workload, string reason);
}
