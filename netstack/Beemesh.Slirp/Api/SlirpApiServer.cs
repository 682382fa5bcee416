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
public sealed partial class SlirpApiServer : IDisposable
{
    /// <summary>slirp4netns reads a request with one read into a 4096-byte buffer; filling it means "too large".</summary>
    public const int MaxRequestBytes = 4096;

    /// <summary>Longest socket path (sun_path holds 108 bytes including the NUL).</summary>
    public const int MaxPathBytes = 107;

    private const int MaxConcurrentConnections = 32;
    private const int MaxDrainBytes = 1 << 20;

    private readonly IPortForwardTable _table;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _requestTimeout;
    private readonly SlirpApiRequestHandler _handler;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _slots = new(MaxConcurrentConnections, MaxConcurrentConnections);
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _badRequests;
    private long _requests;
    private int _disposed;

    /// <summary>Creates a server that is not listening yet; see <see cref="Start"/>.</summary>
    /// <param name="path">Socket path; an existing file there is replaced, as slirp4netns does.</param>
    /// <param name="table">Where rules are added, listed and removed.</param>
    /// <param name="logger">Receives one line per request and per refused connection; null for none.</param>
    /// <param name="defaultGuestAddress">Guest address used when a request has no guest_addr; default 10.0.2.100 (network + 100).</param>
    /// <param name="timeProvider">Clock for the per-connection deadline; default the system clock.</param>
    /// <param name="requestTimeout">How long a client may take to send its request; default 5 seconds.</param>
    public SlirpApiServer(
        string path,
        IPortForwardTable table,
        ILogger? logger,
        IPAddress? defaultGuestAddress = null,
        TimeProvider? timeProvider = null,
        TimeSpan? requestTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(table);
        Path = path;
        _table = table;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _requestTimeout = requestTimeout ?? TimeSpan.FromSeconds(5);
        _handler = new SlirpApiRequestHandler(table, defaultGuestAddress ?? IPAddress.Parse("10.0.2.100"));
    }

    /// <summary>The socket path.</summary>
    public string Path { get; }

    /// <summary>Requests answered with an error, plus connections dropped without a complete request.</summary>
    public long BadRequests => Interlocked.Read(ref _badRequests);

    /// <summary>Connections accepted so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

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
            listener.Listen(MaxConcurrentConnections);
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
            try
            {
                await _slots.WaitAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                _slots.Release();
                return;
            }
            catch (SocketException ex)
            {
                _slots.Release();
                LogAcceptFailed(_logger, ex.SocketErrorCode);
                continue;
            }

            Interlocked.Increment(ref _requests);
            _ = ServeAsync(client, stopping);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stopping)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxRequestBytes);
        try
        {
            using var deadline = new CancellationTokenSource(_requestTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, stopping);
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

            if (timedOut && length == 0)
            {
                Interlocked.Increment(ref _badRequests);
                LogTimedOut(_logger);
                return;
            }

            string reply;
            if (tooLarge)
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
            _slots.Release();
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
}
