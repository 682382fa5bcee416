namespace Beemesh.Sidecar.Tunnel;

/// <summary>
/// Wire constants of the tunnel. A flow is one HTTP/2 CONNECT stream (RFC 9113 section 8.5, as
/// Istio's HBONE uses it): <c>:method</c> CONNECT and <c>:authority</c> the destination's mesh
/// address and port, no <c>:scheme</c> or <c>:path</c>; the payload is the raw TCP byte stream.
/// Half-close: each side passes its workload's FIN on as END_STREAM (an empty DATA frame), and the
/// other side's sidecar turns it into a FIN to its own workload. Revocation is an RST_STREAM
/// (INTERNAL_ERROR) towards the caller and a TCP RST towards the workload.
/// </summary>
public static class TunnelProtocol
{
    /// <summary>The default tunnel port (the HBONE port).</summary>
    public const int DefaultPort = 15008;
}
