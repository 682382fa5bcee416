using System.Net;

namespace Beemesh.Sidecar.Tunnel;

/// <summary>The destination sidecar answered the CONNECT with a non-2xx status (403: not authorized).</summary>
public sealed class TunnelRefusedException : IOException
{
    /// <summary>Creates the exception for <paramref name="status"/>.</summary>
    public TunnelRefusedException(HttpStatusCode status)
        : base($"The tunnel refused the flow with status {(int)status}.") => Status = status;

    /// <summary>The status the tunnel server answered.</summary>
    public HttpStatusCode Status { get; }
}
