using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Beemesh.Sidecar.State;

/// <summary>
/// A listening socket whose first connection is accepted before any server exists: the kernel
/// completes handshakes into the backlog at once, and <see cref="StateApiServer"/> builds Kestrel
/// only when <see cref="First"/> completes. Ownership: the endpoint owns <see cref="Socket"/> and
/// the first accepted connection until a <see cref="FirstConnectionListenerFactory"/> listener takes
/// them over; whoever holds them last disposes them.
/// </summary>
internal sealed class FirstConnectionEndPoint : EndPoint
{
    private Task<Socket?>? _first;

    public FirstConnectionEndPoint(Socket socket)
    {
        Socket = socket;
        _first = AcceptFirstAsync(socket);
    }

    /// <summary>The listening socket.</summary>
    public Socket Socket { get; }

    /// <summary>The first connection; null when the socket was closed first, or when a listener already took it.</summary>
    public Task<Socket?> First => _first ?? Task.FromResult<Socket?>(null);

    /// <summary>Takes the first connection's task (once): the listener that serves the socket returns it first.</summary>
    public Task<Socket?>? TakeFirst() => Interlocked.Exchange(ref _first, null);

    /// <inheritdoc />
    public override AddressFamily AddressFamily => Socket.AddressFamily;

    /// <inheritdoc />
    public override string ToString() => Socket.LocalEndPoint?.ToString() ?? "(listening socket)";

    /// <summary>Closes the socket and the first connection if nobody took it.</summary>
    public async ValueTask CloseAsync()
    {
        Socket.Dispose();
        if (TakeFirst() is { } first && await first.ConfigureAwait(false) is { } accepted)
        {
            accepted.Dispose();
        }
    }

    /// <summary>Accepts one connection; connections reset before they were accepted are skipped. Null once the socket is closed.</summary>
    internal static async Task<Socket?> AcceptFirstAsync(Socket socket)
    {
        while (true)
        {
            try
            {
                return await socket.AcceptAsync().ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                // the caller gave up before we accepted: wait for the next one
            }
            catch (SocketException)
            {
                return null;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
        }
    }
}

/// <summary>
/// Kestrel's transport for <see cref="FirstConnectionEndPoint"/>: serves the endpoint's socket,
/// returning its first (already accepted) connection before accepting more, with Kestrel's own
/// socket connection implementation for each connection.
/// </summary>
internal sealed class FirstConnectionListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly SocketConnectionContextFactory _connections;

    public FirstConnectionListenerFactory(ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        // One I/O queue: a workload's state API is a handful of local connections.
        _connections = new SocketConnectionContextFactory(
            new SocketConnectionFactoryOptions { IOQueueCount = 1 }, loggerFactory.CreateLogger("Beemesh.Sidecar.State.Transport"));
    }

    /// <inheritdoc />
    public bool CanBind(EndPoint endpoint) => endpoint is FirstConnectionEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not FirstConnectionEndPoint first)
        {
            throw new NotSupportedException($"{endpoint.GetType().Name} is not served by this transport");
        }

        return ValueTask.FromResult<IConnectionListener>(new Listener(first, _connections));
    }

    /// <inheritdoc />
    public void Dispose() => _connections.Dispose();

    private sealed class Listener(FirstConnectionEndPoint endPoint, SocketConnectionContextFactory connections) : IConnectionListener
    {
        private volatile bool _unbound;

        public EndPoint EndPoint => endPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (!_unbound)
            {
                Socket? accepted;
                if (endPoint.TakeFirst() is { } first)
                {
                    accepted = await first.WaitAsync(cancellationToken).ConfigureAwait(false);
                    if (accepted is null)
                    {
                        continue; // the socket was closed, or failed: the loop finds out below
                    }
                }
                else
                {
                    try
                    {
                        accepted = await endPoint.Socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
                    {
                        continue;
                    }
                    catch (SocketException) when (_unbound)
                    {
                        return null;
                    }
                    catch (ObjectDisposedException)
                    {
                        return null;
                    }
                }

                if (_unbound)
                {
                    accepted.Dispose();
                    return null;
                }

                // As Kestrel's own socket transport does: without it, Nagle holds a response's last
                // small write (an HTTP/2 stream's trailers, sent after its HEADERS and DATA) until the
                // client acknowledges the first, which a delayed ACK puts off by up to 40 ms.
                accepted.NoDelay = true;
                return connections.Create(accepted);
            }

            return null;
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound = true;
            await endPoint.CloseAsync().ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }
}
