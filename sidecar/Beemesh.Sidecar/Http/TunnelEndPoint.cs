using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Beemesh.Sidecar.Http;

/// <summary>
/// A listening "address" of the in-process HTTP server that is no socket: connections arrive as
/// tunnel streams handed over by the tunnel server. One per protocol, because Kestrel speaks
/// HTTP/2 without TLS (prior knowledge, RFC 9113 section 3.3) only on an HTTP/2-only endpoint.
/// </summary>
internal sealed class TunnelEndPoint(HttpProtocols protocols) : EndPoint
{
    /// <summary>The one protocol served on connections of this endpoint.</summary>
    public HttpProtocols Protocols { get; } = protocols;

    public override string ToString() => $"tunnel:{Protocols}";
}
