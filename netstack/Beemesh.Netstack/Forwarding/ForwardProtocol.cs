namespace Beemesh.Netstack.Forwarding;

/// <summary>Transport protocol of a port-forwarding rule.</summary>
public enum ForwardProtocol
{
    /// <summary>TCP.</summary>
    Tcp,

    /// <summary>UDP.</summary>
    Udp,
}
