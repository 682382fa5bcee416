using System.Net;

namespace Beemesh.Netstack.Forwarding;

/// <summary>
/// The stack's one extension point for outbound flows ("who handles a new flow to this
/// address"): the sidecar claims mesh destinations and sends them to its own loopback listener
/// instead of the real address. The stack knows nothing of identity or the mesh. Called on the
/// stack's loop thread; implementations must not block.
/// </summary>
public interface IFlowRedirector
{
    /// <summary>
    /// Decides where a new guest TCP connection to <paramref name="destination"/> goes. Return true
    /// with a host endpoint to connect to instead; false lets the stack apply its normal rules.
    /// </summary>
    bool TryRedirect(IPEndPoint destination, out IPEndPoint hostEndpoint);

    /// <summary>
    /// A redirected connection's host socket is connected: <paramref name="localEndpoint"/> is its
    /// local address, which the redirect target sees as the peer, so it can find
    /// <paramref name="destination"/> (the address the guest dialled) again.
    /// </summary>
    void Connected(IPEndPoint destination, IPEndPoint localEndpoint);
}
