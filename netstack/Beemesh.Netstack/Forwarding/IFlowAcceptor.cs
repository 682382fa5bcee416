using System.Net;

namespace Beemesh.Netstack.Forwarding;

/// <summary>
/// Takes outbound guest flows in process (the sidecar's mesh path): the stack accepts the guest's
/// SYN itself and hands the flow over as a <see cref="GuestFlowStream"/>, with no host socket in
/// between. Called on the stack's loop thread; implementations must not block.
/// </summary>
public interface IFlowAcceptor
{
    /// <summary>True when a new guest connection to <paramref name="destination"/> is this acceptor's.</summary>
    bool Claims(IPEndPoint destination);

    /// <summary>
    /// A claimed connection: <paramref name="stream"/> carries its bytes both ways and is now
    /// owned by the acceptor (dispose or abort it when done). The guest's handshake is already
    /// answered; bytes it sends wait in the stream within the advertised window.
    /// </summary>
    void Accept(IPEndPoint destination, GuestFlowStream stream);
}
