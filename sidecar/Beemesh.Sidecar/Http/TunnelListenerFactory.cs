using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// Kestrel's transport for tunnel streams: binds <see cref="TunnelEndPoint"/>s only (the selector
/// interface keeps Kestrel's socket transport for everything else) and routes each handed-over
/// connection to the listener of its protocol.
/// </summary>
internal sealed class TunnelListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private TunnelConnectionListener? _http1;
    private TunnelConnectionListener? _http2;

    public bool CanBind(EndPoint endpoint) => endpoint is TunnelEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not TunnelEndPoint tunnel)
        {
            throw new NotSupportedException($"{endpoint} is not a tunnel endpoint.");
        }

        var listener = new TunnelConnectionListener(tunnel);
        if (tunnel.Protocols == HttpProtocols.Http2)
        {
            _http2 = listener;
        }
        else
        {
            _http1 = listener;
        }

        return ValueTask.FromResult<IConnectionListener>(listener);
    }

    /// <summary>Hands <paramref name="connection"/> to Kestrel as HTTP/2 or HTTP/1.1; false when not listening.</summary>
    public bool TryEnqueue(ConnectionContext connection, bool http2) =>
        (http2 ? _http2 : _http1)?.TryEnqueue(connection) ?? false;
}
