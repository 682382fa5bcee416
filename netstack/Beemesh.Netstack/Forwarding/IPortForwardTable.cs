using System.Net;

namespace Beemesh.Netstack.Forwarding;

/// <summary>
/// The live set of port-forwarding rules of a running stack. Safe to call from any thread:
/// implementations hand the change to the stack's loop and wait for it.
/// </summary>
public interface IPortForwardTable
{
    /// <summary>Adds a rule and starts listening; throws <see cref="PortForwardException"/> when the host socket cannot be bound.</summary>
    PortForwardRule Add(ForwardProtocol protocol, IPAddress hostAddress, int hostPort, IPAddress guestAddress, int guestPort);

    /// <summary>All rules, ordered by id.</summary>
    IReadOnlyList<PortForwardRule> List();

    /// <summary>Removes a rule and closes its listener; false when no rule has that id.</summary>
    bool Remove(int id);
}
