using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Beemesh.Spiffe.Serving;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.Identity;

/// <summary>
/// The SPIFFE Workload API as a workload behind <c>beemesh run</c> sees it: a unix socket in a
/// per-run directory that relays each connection, bytes unchanged both ways (gRPC over HTTP/2), to
/// the node agent's Workload API socket.
/// </summary>
/// <remarks>
/// <para>Identity: the relay opens one upstream connection per accepted connection, from this
/// process. The agent attests a caller by its process; this process is the one registered for the
/// workload (the sidecar registers its own pid, and the workload is its descendant), so every
/// relayed call gets exactly the workload's SVID and bundle, and never anything else. The workload
/// itself never reaches the agent's sockets: its mount namespace shows this relay's directory in
/// place of the agent's state directory.</para>
/// <para>Who may connect: only processes of the workload, i.e. whose <c>SO_PEERCRED</c> pid
/// the predicate given to <see cref="Start"/> accepts (descendants of the run's helper); others are
/// closed at once and counted. At most <see cref="MaxConnections"/> relayed connections at a time:
/// past that the caller gets an HTTP/2 GOAWAY (ENHANCE_YOUR_CALM) whose debug text says why, then
/// the connection is closed, and everyone already connected keeps being served.</para>
/// </remarks>
public sealed class WorkloadApiRelay : IAsyncDisposable
{
    /// <summary>Concurrent relayed connections: a SPIFFE library holds one or two; 16 leaves ample room.</summary>
    public const int MaxConnections = 16;

    /// <summary>The debug text of the GOAWAY sent past <see cref="MaxConnections"/>.</summary>
    public const string TooManyConnectionsText = "beemesh: too many Workload API connections from this workload (limit 16)";

    /// <summary>The debug text of the GOAWAY sent when the agent's socket cannot be reached.</summary>
    public const string UpstreamUnavailableText = "beemesh: the node agent's Workload API is unavailable";

    private const int SolSocket = 1;
    private const int SoPeerCred = 17;
    private const int BufferSize = 16 * 1024;

    private readonly AcceptLoop _loop;
    private readonly CancellationToken _stopping;
    private readonly string _upstreamPath;
    private readonly Func<int, bool> _isWorkloadProcess;
    private readonly ILogger _logger;
    private int _active;
    private TaskCompletionSource _activeChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _refusedPeers;
    private long _refusedOverLimit;
    private long _relayed;

    private WorkloadApiRelay(Socket listener, string socketPath, string upstreamPath, Func<int, bool> isWorkloadProcess, ILogger logger)
    {
        SocketPath = socketPath;
        _upstreamPath = upstreamPath;
        _isWorkloadProcess = isWorkloadProcess;
        _logger = logger;
        _loop = new AcceptLoop(listener, Accept, AcceptFailedAsync);
        _stopping = _loop.Stopping;
        _loop.Start();
    }

    /// <summary>The relay's own socket (mode 0600: the workload runs as our uid, mapped to root).</summary>
    public string SocketPath { get; }

    /// <summary>Connections closed because their process is not the workload's.</summary>
    public long RefusedPeers => Interlocked.Read(ref _refusedPeers);

    /// <summary>Connections answered with a GOAWAY because <see cref="MaxConnections"/> were open.</summary>
    public long RefusedOverLimit => Interlocked.Read(ref _refusedOverLimit);

    /// <summary>Connections relayed to the agent so far.</summary>
    public long Relayed => Interlocked.Read(ref _relayed);

    /// <summary>Relayed connections open now.</summary>
    public int Active => Volatile.Read(ref _active);

    /// <summary>
    /// Completes once <paramref name="condition"/> holds over the counters above, checked again whenever a
    /// relayed connection opens or ends: for callers (tests, diagnostics) that wait without polling.
    /// </summary>
    public async Task WaitUntilAsync(Func<WorkloadApiRelay, bool> condition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(condition);
        while (true)
        {
            Task changed = Volatile.Read(ref _activeChanged).Task; // taken before the check, so no change in between is missed
            if (condition(this))
            {
                return;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Listens on <paramref name="socketPath"/> (replacing a stale socket file) and relays to
    /// <paramref name="upstreamPath"/>.
    /// </summary>
    /// <param name="socketPath">Where the relay listens; its directory must exist.</param>
    /// <param name="upstreamPath">The agent's Workload API socket.</param>
    /// <param name="isWorkloadProcess">Whether a connecting pid (as this process sees it) belongs to the workload.</param>
    /// <param name="logger">Where refusals are logged.</param>
    public static WorkloadApiRelay Start(string socketPath, string upstreamPath, Func<int, bool> isWorkloadProcess, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentException.ThrowIfNullOrEmpty(upstreamPath);
        ArgumentNullException.ThrowIfNull(isWorkloadProcess);
        ArgumentNullException.ThrowIfNull(logger);
        File.Delete(socketPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new WorkloadApiRelay(listener, socketPath, upstreamPath, isWorkloadProcess, logger);
    }

    /// <summary>Whether <paramref name="pid"/> is a descendant of <paramref name="ancestor"/> (not the ancestor itself), by the parent links in /proc.</summary>
    public static bool IsDescendantOf(int pid, int ancestor)
    {
        // Bounded: a pid chain cannot be longer than the pid space, and a cycle is impossible, but a
        // racing /proc must not keep us walking.
        for (int step = 0; step < 4096 && pid > 1; step++)
        {
            int parent = ParentOf(pid);
            if (parent == ancestor)
            {
                return true;
            }

            pid = parent;
        }

        return false;
    }

    /// <summary>The parent pid from /proc/PID/stat; 0 when the process is gone or unreadable.</summary>
    internal static int ParentOf(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }

        // "PID (COMM) STATE PPID ...": COMM may hold spaces and ')', so parse after the last ')'.
        int close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return 0;
        }

        string[] fields = stat[(close + 1)..].Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 2 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int parent) ? parent : 0;
    }

    /// <summary>An HTTP/2 server preface (empty SETTINGS) and a GOAWAY frame carrying <paramref name="debugText"/>.</summary>
    internal static byte[] GoAwayFrames(uint errorCode, string debugText)
    {
        byte[] debug = Encoding.UTF8.GetBytes(debugText);
        var frames = new byte[9 + 9 + 8 + debug.Length];
        // SETTINGS, no parameters (RFC 9113 §6.5): length 0, type 4, flags 0, stream 0.
        frames[3] = 0x4;
        Span<byte> goAway = frames.AsSpan(9);
        int length = 8 + debug.Length;
        goAway[0] = (byte)(length >> 16);
        goAway[1] = (byte)(length >> 8);
        goAway[2] = (byte)length;
        goAway[3] = 0x7; // GOAWAY (RFC 9113 §6.8), flags 0, stream 0
        BinaryPrimitives.WriteUInt32BigEndian(goAway[9..], 0); // last stream id: none processed
        BinaryPrimitives.WriteUInt32BigEndian(goAway[13..], errorCode);
        debug.CopyTo(goAway[17..]);
        return frames;
    }

    /// <summary>HTTP/2 ENHANCE_YOUR_CALM.</summary>
    internal const uint EnhanceYourCalm = 0xb;

    /// <summary>HTTP/2 INTERNAL_ERROR.</summary>
    internal const uint InternalError = 0x2;

    private async Task AcceptFailedAsync(SocketException e)
    {
        // EMFILE and the like: pause instead of spinning, keep serving.
        RelayLog.AcceptFailed(_logger, e.Message);
        await Task.Delay(100).ConfigureAwait(false);
    }

    private Task? Accept(Socket client)
    {
        int pid = PeerPid(client);
        if (pid <= 0 || !_isWorkloadProcess(pid))
        {
            // Refusals are logged at the 1st, 2nd, 4th, ...: a flood cannot fill the log.
            if (System.Numerics.BitOperations.IsPow2(Interlocked.Increment(ref _refusedPeers)))
            {
                RelayLog.RefusedPeer(_logger, pid);
            }

            client.Dispose();
            return null;
        }

        if (Interlocked.Increment(ref _active) > MaxConnections)
        {
            Interlocked.Decrement(ref _active);
            if (System.Numerics.BitOperations.IsPow2(Interlocked.Increment(ref _refusedOverLimit)))
            {
                RelayLog.RefusedOverLimit(_logger, pid, MaxConnections);
            }

            return RefuseAsync(client, EnhanceYourCalm, TooManyConnectionsText);
        }

        Interlocked.Increment(ref _relayed);
        ActiveChanged();
        return RelayAsync(client);
    }

    private static int PeerPid(Socket socket)
    {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            return socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) >= 4 ? BitConverter.ToInt32(ucred) : 0;
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    private async Task RefuseAsync(Socket client, uint errorCode, string text)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
                timeout.CancelAfter(TimeSpan.FromSeconds(2));
                await client.SendAsync(GoAwayFrames(errorCode, text), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the caller is gone already
            }
        }
    }

    private async Task RelayAsync(Socket client)
    {
        try
        {
            var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await upstream.ConnectAsync(new UnixDomainSocketEndPoint(_upstreamPath), _stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                upstream.Dispose();
                RelayLog.UpstreamFailed(_logger, _upstreamPath, e.Message);
                await RefuseAsync(client, InternalError, UpstreamUnavailableText).ConfigureAwait(false);
                return;
            }

            using (client)
            using (upstream)
            using (_stopping.Register(() =>
            {
                client.Dispose();
                upstream.Dispose();
            }))
            {
                Task down = PumpAsync(client, upstream);
                Task up = PumpAsync(upstream, client);
                // Either side failing ends both: a half-broken HTTP/2 connection is of no use.
                Task first = await Task.WhenAny(down, up).ConfigureAwait(false);
                if (first.IsFaulted)
                {
                    client.Dispose();
                    upstream.Dispose();
                }

                await Task.WhenAll(down, up).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // one side closed abruptly; both are closed now
        }
        finally
        {
            Interlocked.Decrement(ref _active);
            ActiveChanged();
        }
    }

    private void ActiveChanged() => Interlocked.Exchange(ref _activeChanged, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Copies until end of stream, then passes the half-close on.</summary>
    private static async Task PumpAsync(Socket from, Socket to)
    {
        byte[] buffer = new byte[BufferSize];
        while (true)
        {
            int read = await from.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
            if (read == 0)
            {
                to.Shutdown(SocketShutdown.Send);
                return;
            }

            int sent = 0;
            while (sent < read)
            {
                sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Stops accepting, closes every relayed connection and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_loop.IsStopping)
        {
            return;
        }

        await _loop.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Log messages of <see cref="WorkloadApiRelay"/>.</summary>
internal static partial class RelayLog
{
    [LoggerMessage(EventId = 4020, Level = LogLevel.Warning, Message = "Workload API relay: refused a connection from pid {Pid}: not a process of this workload")]
    public static partial void RefusedPeer(ILogger logger, int pid);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Warning, Message = "Workload API relay: refused a connection from pid {Pid}: {Limit} connections are open already")]
    public static partial void RefusedOverLimit(ILogger logger, int pid, int limit);

    [LoggerMessage(EventId = 4022, Level = LogLevel.Warning, Message = "Workload API relay: cannot reach the agent at {Path}: {Error}")]
    public static partial void UpstreamFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 4023, Level = LogLevel.Warning, Message = "Workload API relay: accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, string error);
}
