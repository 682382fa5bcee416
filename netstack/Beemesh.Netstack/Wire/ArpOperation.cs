namespace Beemesh.Netstack.Wire;

/// <summary>ARP opcodes (RFC 826). Append-only.</summary>
public enum ArpOperation : ushort
{
    /// <summary>Who has TargetIp? Tell SenderIp.</summary>
    Request = 1,

    /// <summary>SenderIp is at SenderMac.</summary>
    Reply = 2,
}
