using System.Net;
using System.Net.Sockets;

namespace Beemesh.Authorization;

/// <summary>
/// Parsing and matching of <c>ipBlocks</c> / <c>source.ip</c> values: a single address
/// (<c>1.2.3.4</c>, a /32 or /128) or a CIDR range (<c>10.0.0.0/8</c>). Istio matches these exactly
/// (no <c>*</c> forms). Host bits after the prefix are cleared, as Envoy does, rather than refused.
/// </summary>
internal static class IpBlock
{
    /// <summary>Parses one block; <paramref name="error"/> says why when it returns false.</summary>
    public static bool TryParse(string text, out IPNetwork network, out string? error)
    {
        network = default;
        ReadOnlySpan<char> addressPart = text;
        int prefix = -1;
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            addressPart = text.AsSpan(0, slash);
            if (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefix))
            {
                error = $"\"{text}\" is not an IP address or CIDR range";
                return false;
            }
        }

        if (!IPAddress.TryParse(addressPart, out IPAddress? address) || (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0))
        {
            error = $"\"{text}\" is not an IP address or CIDR range";
            return false;
        }

        int bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefix < 0)
        {
            prefix = bits;
        }
        else if (prefix > bits)
        {
            error = $"\"{text}\": prefix length {prefix} is longer than {bits} bits";
            return false;
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        bytes = bytes[..length];
        for (int i = 0; i < length; i++)
        {
            int keep = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }

        network = new IPNetwork(new IPAddress(bytes), prefix);
        error = null;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="address"/> lies in <paramref name="network"/>; an IPv4-mapped IPv6
    /// address (what a dual-stack socket reports) is compared as the IPv4 address it carries.
    /// </summary>
    public static bool Contains(IPNetwork network, IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6 && network.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
        {
            address = address.MapToIPv4();
        }

        return network.Contains(address);
    }
}
