namespace Beemesh.Netstack.Stack;

/// <summary>
/// A transport flow as the guest sees it: its own address and port, and the remote address
/// and port it talks to (a real host, the gateway, or a port-forwarding client's address).
/// </summary>
internal readonly record struct FlowKey(UInt128 GuestAddress, ushort GuestPort, UInt128 RemoteAddress, ushort RemotePort)
{
    public override string ToString() =>
        $"{IpAddr.Format(GuestAddress)}:{GuestPort} <-> {IpAddr.Format(RemoteAddress)}:{RemotePort}";
}
