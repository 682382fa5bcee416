namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Wire constants of the tunnel. A flow is one HTTP/2 extended CONNECT stream (RFC 8441 section 4)
/// with <c>:protocol</c> = <see cref="Name"/> and <c>:authority</c> = the destination's mesh
/// address and port. Extended rather than plain CONNECT (RFC 9113 section 8.5) because .NET's
/// HttpClient sends CONNECT over HTTP/2 only in its extended form (the one it uses for WebSockets),
/// while Kestrel accepts both; the payload is the raw TCP byte stream either way.
/// Half-close: the server side passes the workload's FIN on as END_STREAM, but HttpClient cannot
/// end the request side of an extended CONNECT stream without resetting it, so a caller's FIN is
/// not forwarded (see <see cref="TunnelStream.ShutdownWriteAsync"/>). Revocation is an RST_STREAM
/// (INTERNAL_ERROR) towards the caller and a TCP RST towards the workload.
/// </summary>
public static class TunnelProtocol
{
    /// <summary>The <c>:protocol</c> pseudo-header value of a tunnelled TCP flow.</summary>
    public const string Name = "beemesh-tcp";

    /// <summary>The default tunnel port (the HBONE port).</summary>
    public const int DefaultPort = 15008;
}
