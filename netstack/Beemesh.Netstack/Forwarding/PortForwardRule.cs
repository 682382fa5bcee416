using System.Net;

namespace Beemesh.Netstack.Forwarding;

/// <summary>
/// One host-to-guest forwarding rule (slirp4netns "hostfwd"): connections to
/// <see cref="HostAddress"/>:<see cref="HostPort"/> on the host reach
/// <see cref="GuestAddress"/>:<see cref="GuestPort"/> in the guest, keeping the client's source address.
/// </summary>
public sealed record PortForwardRule(
    int Id,
    ForwardProtocol Protocol,
    IPAddress HostAddress,
    int HostPort,
    IPAddress GuestAddress,
    int GuestPort);
