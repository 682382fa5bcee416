namespace Beemesh.Netstack.Wire;

/// <summary>Writes the 8-byte Ethernet link-layer address option (RFC 4861 §4.6.1, RFC 2464 §6).</summary>
internal static class NdpLinkLayerOption
{
    public const int Length = 8;

    public static void Write(Span<byte> destination, NdpOptionType type, MacAddress address)
    {
        destination[0] = (byte)type;
        destination[1] = 1;
        address.CopyTo(destination[2..]);
    }
}
