namespace Beemesh.Netstack.Wire;

/// <summary>An Ethernet/IPv4 ARP request or reply.</summary>
/// <param name="Operation">Request or reply.</param>
/// <param name="SenderMac">Sender hardware address.</param>
/// <param name="SenderIp">Sender protocol address.</param>
/// <param name="TargetMac">Target hardware address (zero in a request).</param>
/// <param name="TargetIp">Target protocol address.</param>
public readonly record struct ArpRepr(
    ArpOperation Operation, MacAddress SenderMac, Ipv4Address SenderIp, MacAddress TargetMac, Ipv4Address TargetIp)
{
    private const ushort HardwareEthernet = 1;

    /// <summary>Bytes <see cref="Emit"/> writes.</summary>
    public int BufferLength => ArpPacket.Length;

    /// <summary>Accepts only Ethernet (1) / IPv4 (0x0800) with lengths 6/4 and a request or reply opcode.</summary>
    public static bool TryParse(ArpPacket packet, out ArpRepr repr)
    {
        repr = default;
        if (packet.HardwareType != HardwareEthernet || packet.ProtocolType != (ushort)EtherType.Ipv4
            || packet.HardwareLength != MacAddress.Length || packet.ProtocolLength != Ipv4Address.Length)
        {
            return false;
        }

        ArpOperation operation = packet.Operation;
        if (operation is not (ArpOperation.Request or ArpOperation.Reply))
        {
            return false;
        }

        repr = new ArpRepr(operation, packet.SenderMac, packet.SenderIp, packet.TargetMac, packet.TargetIp);
        return true;
    }

    /// <summary>Writes the 28-byte packet.</summary>
    public void Emit(Span<byte> buffer)
    {
        if (!ArpPacket.TryCreate(buffer, out ArpPacket packet))
        {
            WireThrowHelper.BufferTooSmall("ARP packet", ArpPacket.Length, buffer.Length);
        }

        packet.HardwareType = HardwareEthernet;
        packet.ProtocolType = (ushort)EtherType.Ipv4;
        packet.HardwareLength = MacAddress.Length;
        packet.ProtocolLength = Ipv4Address.Length;
        packet.Operation = Operation;
        packet.SenderMac = SenderMac;
        packet.SenderIp = SenderIp;
        packet.TargetMac = TargetMac;
        packet.TargetIp = TargetIp;
    }
}
