using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// The Kestrel side of a <see cref="TunnelEndPoint"/>: connections enqueued by the tunnel server
/// are accepted in order. Unbounded because every enqueued connection is an HTTP/2 stream the
/// tunnel already admitted (SETTINGS_MAX_CONCURRENT_STREAMS bounds them).
/// </summary>
internal sealed class TunnelConnectionListener(TunnelEndPoint endPoint) : IConnectionListener
{
    private readonly Channel<ConnectionContext> _pending = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = false });

    public EndPoint EndPoint { get; } = endPoint;

    /// <summary>Hands <paramref name="connection"/> to Kestrel; false once the listener was unbound.</summary>
    public bool TryEnqueue(ConnectionContext connection) => _pending.Writer.TryWrite(connection);

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _pending.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return null; // null tells Kestrel the listener is done
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _pending.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
