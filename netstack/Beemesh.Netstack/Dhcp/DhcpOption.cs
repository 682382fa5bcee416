namespace Beemesh.Netstack.Dhcp;

/// <summary>
/// One option from a DHCP message's options field: its code and its data bytes (without the
/// code and length octets). The data always lies inside the message it was read from.
/// </summary>
public readonly ref struct DhcpOption
{
    /// <summary>Creates an option view.</summary>
    /// <param name="code">The option code.</param>
    /// <param name="data">The option data (the length octet is implied by its length).</param>
    public DhcpOption(byte code, ReadOnlySpan<byte> data)
    {
        Code = code;
        Data = data;
    }

    /// <summary>The option code (RFC 2132); compare with <see cref="DhcpOptionCode"/>.</summary>
    public byte Code { get; }

    /// <summary>The option data, 0 to 255 bytes.</summary>
    public ReadOnlySpan<byte> Data { get; }
}
