using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Beemesh.Netstack.Forwarding;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Beemesh.Slirp.Api;

/// <summary>
/// The slirp4netns JSON API on a unix stream socket (<c>--api-socket</c>): one request per
/// connection, the reply written back, then the connection shut down. Requests of 4096 bytes or
/// more are refused as slirp4netns refuses them. Unlike slirp4netns, connections are served
/// concurrently and each has a deadline, so a client that sends garbage, too much, or nothing at
/// all is answered or dropped and counted in <see cref="BadRequests"/> while others keep being served.
/// </summary>
/// <remarks>
/// Limits: at most <see cref="MaxConnectionsPerCaller"/> open connections per caller (the peer
/// process, from SO_PEERCRED) and <see cref="MaxConnections"/> in all, each request under
/// <see cref="MaxRequestBytes"/>. Accepting never waits: a connection past a limit takes the place of
/// the oldest one still waiting for its request (the same caller's, or else the biggest holder's),
/// which is answered <see cref="SlirpApiRequestHandler.TooManyConnections"/> and closed; so idle
/// clients cannot hold the slots a real request needs. Only when every connection in the way is
/// already being answered is the newcomer itself refused with that text.
/// </remarks>
public sealed partial class SlirpApiServer : IDisposable
{
    /// <summary>slirp4netns reads a request with one read into a 4096-byte buffer; filling it means "too large".</summary>
    public const int MaxRequestBytes = 4096;

    /// <summary>Longest socket path (sun_path holds 108 bytes including the NUL).</summary>
    public const int MaxPathBytes = 107;

    /// <summary>Most connections open at once, all callers together (see the remarks).</summary>
    public const int MaxConnections = 64;

    /// <summary>Most connections one caller (one peer process id) may hold open at once (see the remarks).</summary>
    public const int MaxConnectionsPerCaller = 8;

    private const int MaxDrainBytes = 1 << 20;

    private readonly IPortForwardTable _table;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _requestTimeout;
    private readonly SlirpApiRequestHandler _handler;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<ApiConnection> _open = [];
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _badRequests;
    private long _requests;
    private long _evicted;
    private int _disposed;

    /// <summary>Creates a server that is not listening yet; see <see cref="Start"/>.</summary>
    /// <param name="path">Socket path; an existing file there is replaced, as slirp4netns does.</param>
    /// <param name="table">Where rules are added, listed and removed.</param>
    /// <param name="logger">Receives one line per request and per refused connection; null for none.</param>
    /// <param name="defaultGuestAddress">Guest address used when a request has no guest_addr; default 10.0.2.100 (network + 100).</param>
    /// <param name="timeProvider">Clock for the per-connection deadline; default the system clock.</param>
    /// <param name="requestTimeout">How long a client may take to send its request; default 5 seconds.</param>
    /// <param name="enableIpv6">Accept IPv6 host and guest addresses (see <see cref="SlirpApiRequestHandler"/>); default false.</param>
    public SlirpApiServer(
        string path,
        IPortForwardTable table,
        ILogger? logger,
        IPAddress? defaultGuestAddress = null,
        TimeProvider? timeProvider = null,
        TimeSpan? requestTimeout = null,
        bool enableIpv6 = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(table);
        Path = path;
        _table = table;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _requestTimeout = requestTimeout ?? TimeSpan.FromSeconds(5);
        _handler = new SlirpApiRequestHandler(table, defaultGuestAddress ?? IPAddress.Parse("10.0.2.100"), enableIpv6);
    }

    /// <summary>The socket path.</summary>
    public string Path { get; }

    /// <summary>Requests answered with an error, plus connections dropped without a complete request.</summary>
    public long BadRequests => Interlocked.Read(ref _badRequests);

    /// <summary>Connections accepted so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Connections closed, or refused, because a connection limit was reached.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>
    /// Removes any file at <see cref="Path"/>, binds, listens and starts serving in the background.
    /// Throws <see cref="InvalidOperationException"/> with slirp4netns's message when the path is too
    /// long, and <see cref="SocketException"/> when it cannot be bound.
    /// </summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_listener is not null)
        {
            throw new InvalidOperationException("the API server is already started");
        }

        if (Encoding.UTF8.GetByteCount(Path) > MaxPathBytes)
        {
            throw new InvalidOperationException($"the specified API socket path is too long (>= {MaxPathBytes + 1})");
        }

        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
            // unlink failures surface as a bind error below, as in slirp4netns.
        }
        catch (UnauthorizedAccessException)
        {
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(Path));
            listener.Listen(MaxConnections * 2);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Stops accepting, aborts connections in progress and closes the socket (the file is left, as slirp4netns leaves it).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        _listener?.Dispose();
        try
        {
            _acceptLoop?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                LogAcceptFailed(_logger, ex.SocketErrorCode);
                continue;
            }

            Interlocked.Increment(ref _requests);
            var connection = new ApiConnection(client, PeerProcessId(client));
            if (Admit(connection) is { } victim)
            {
                Interlocked.Increment(ref _evicted);
                LogEvicted(_logger, victim.Caller);
                victim.Evict();
            }

            if (connection.Refused)
            {
                Interlocked.Increment(ref _evicted);
                LogEvicted(_logger, connection.Caller);
                _ = RefuseAsync(client, stopping);
                continue;
            }

            _ = ServeAsync(connection, stopping);
        }
    }

    /// <summary>
    /// Adds <paramref name="connection"/> to the open set, or marks it refused; returns the waiting
    /// connection it displaces, if a limit was reached (see the class remarks).
    /// </summary>
    private ApiConnection? Admit(ApiConnection connection)
    {
        lock (_open)
        {
            ApiConnection? victim = null;
            int mine = _open.Count(c => c.Caller == connection.Caller);
            if (mine >= MaxConnectionsPerCaller)
            {
                victim = _open.FirstOrDefault(c => c.Caller == connection.Caller && !c.RequestComplete);
            }
            else if (_open.Count >= MaxConnections)
            {
                // The biggest holder pays: a flood from one process never displaces another's request.
                int hoard = _open.Where(c => !c.RequestComplete).GroupBy(c => c.Caller).Select(g => g.Count()).DefaultIfEmpty(0).Max();
                victim = _open.FirstOrDefault(c => !c.RequestComplete && _open.Count(o => o.Caller == c.Caller && !o.RequestComplete) == hoard);
            }
            else
            {
                _open.Add(connection);
                return null;
            }

            if (victim is null)
            {
                connection.Refused = true;
                return null;
            }

            victim.Evicted = true;
            _open.Remove(victim);
            _open.Add(connection);
            return victim;
        }
    }

    /// <summary>Marks the request read: from now on the connection is being answered and is never displaced.</summary>
    private bool TryCompleteRequest(ApiConnection connection)
    {
        lock (_open)
        {
            if (connection.Evicted)
            {
                return false;
            }

            connection.RequestComplete = true;
            return true;
        }
    }

    private void Forget(ApiConnection connection)
    {
        lock (_open)
        {
            _open.Remove(connection);
        }
    }

    private async Task RefuseAsync(Socket client, CancellationToken stopping)
    {
        try
        {
            using var deadline = new CancellationTokenSource(_requestTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, stopping);
            await client.SendAsync(Encoding.UTF8.GetBytes(SlirpApiRequestHandler.TooManyConnections), SocketFlags.None, linked.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            LogConnectionFailed(_logger, ex.Message);
        }
        finally
        {
            client.Dispose();
        }
    }

    /// <summary>The peer's process id from SO_PEERCRED (struct ucred: pid, uid, gid); 0 when unknown.</summary>
    private static int PeerProcessId(Socket client)
    {
        const int SolSocket = 1;
        const int SoPeerCred = 17;
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            return client.GetRawSocketOption(SolSocket, SoPeerCred, ucred) >= 4
                ? System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(ucred)
                : 0;
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    private async Task ServeAsync(ApiConnection connection, CancellationToken stopping)
    {
        Socket client = connection.Socket;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxRequestBytes);
        try
        {
            using var deadline = new CancellationTokenSource(_requestTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, connection.Evicting, stopping);
            int length = 0;
            bool tooLarge = false;
            bool timedOut = false;
            try
            {
                while (true)
                {
                    int read = await client.ReceiveAsync(buffer.AsMemory(length, MaxRequestBytes - length), SocketFlags.None, linked.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    length += read;
                    if (length >= MaxRequestBytes)
                    {
                        tooLarge = true;
                        break;
                    }

                    if (ParsonJsonParser.Parse(buffer.AsSpan(0, length), out _) != OperationStatus.NeedMoreData)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                timedOut = true;
            }

            string reply;
            if (!TryCompleteRequest(connection))
            {
                // Displaced by a newer connection past a limit: say why, then close.
                reply = SlirpApiRequestHandler.TooManyConnections;
            }
            else if (timedOut && length == 0)
            {
                Interlocked.Increment(ref _badRequests);
                LogTimedOut(_logger);
                return;
            }
            else if (tooLarge)
            {
                Interlocked.Increment(ref _badRequests);
                LogTooLarge(_logger, length);
                reply = SlirpApiRequestHandler.TooLarge;
            }
            else
            {
                LogRequest(_logger, Encoding.UTF8.GetString(buffer, 0, length));
                reply = _handler.Handle(buffer.AsSpan(0, length), out bool isError);
                if (isError)
                {
                    Interlocked.Increment(ref _badRequests);
                }
            }

            // The reply gets its own deadline: the request's may already have expired.
            using var replyDeadline = new CancellationTokenSource(_requestTimeout, _time);
            using var replyToken = CancellationTokenSource.CreateLinkedTokenSource(replyDeadline.Token, stopping);
            byte[] bytes = Encoding.UTF8.GetBytes(reply);
            await client.SendAsync(bytes, SocketFlags.None, replyToken.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
            if (tooLarge)
            {
                // Closing with unread input makes the kernel report a reset to the client, which could
                // then lose the reply; read and drop the rest of an oversized request first (bounded).
                int drained = 0;
                int read;
                while (drained < MaxDrainBytes
                    && (read = await client.ReceiveAsync(buffer.AsMemory(0, MaxRequestBytes), SocketFlags.None, replyToken.Token).ConfigureAwait(false)) > 0)
                {
                    drained += read;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            LogConnectionFailed(_logger, ex.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            client.Dispose();
            connection.Dispose();
            Forget(connection);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "api: got request: {Request}")]
    private static partial void LogRequest(ILogger logger, string request);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "api: too large message (>= {Length} bytes)")]
    private static partial void LogTooLarge(ILogger logger, int length);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "api: client sent no request before the deadline")]
    private static partial void LogTimedOut(ILogger logger);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "api: accept failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, SocketError error);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "api: connection ended early: {Reason}")]
    private static partial void LogConnectionFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "api: connection limit reached; a waiting connection of pid {Pid} was closed")]
    private static partial void LogEvicted(ILogger logger, int pid);

    /// <summary>One open API connection and what the limits need to know about it (guarded by the server's lock).</summary>
    private sealed class ApiConnection(Socket socket, int caller) : IDisposable
    {
        private readonly CancellationTokenSource _evict = new();

        public Socket Socket { get; } = socket;

        /// <summary>The peer's process id (0 when unknown).</summary>
        public int Caller { get; } = caller;

        /// <summary>Cancelled when the connection is displaced.</summary>
        public CancellationToken Evicting => _evict.Token;

        public bool RequestComplete { get; set; }

        /// <summary>Set under the server's lock when a newer connection takes this one's place.</summary>
        public bool Evicted { get; set; }

        public bool Refused { get; set; }

        /// <summary>Wakes the displaced connection's pending read, after <see cref="Evicted"/> was set.</summary>
        public void Evict()
        {
            try
            {
                _evict.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already finished.
            }
        }

        public void Dispose() => _evict.Dispose();
    }
}
