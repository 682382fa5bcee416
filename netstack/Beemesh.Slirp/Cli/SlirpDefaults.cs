namespace Beemesh.Slirp.Cli;

/// <summary>Defaults and limits of the slirp4netns 1.2 command line.</summary>
public static class SlirpDefaults
{
    /// <summary>Default MTU.</summary>
    public const int Mtu = 1500;

    /// <summary>Largest MTU slirp4netns accepts (libslirp's IF_MTU_MAX).</summary>
    public const int MaxMtu = 65521;

    /// <summary>Default network.</summary>
    public const string Cidr = "10.0.2.0/24";

    /// <summary>Shortest prefix accepted by <c>--cidr</c>.</summary>
    public const int MinPrefixLength = 1;

    /// <summary>Longest prefix accepted by <c>--cidr</c>: the recommended guest is network + 100, so /26 and longer cannot hold it.</summary>
    public const int MaxPrefixLength = 25;

    /// <summary>Offset of the gateway from the network address.</summary>
    public const int GatewayOffset = 2;

    /// <summary>Offset of the DNS forwarder from the network address.</summary>
    public const int DnsOffset = 3;

    /// <summary>Offset of the first DHCP lease from the network address.</summary>
    public const int DhcpStartOffset = 15;

    /// <summary>Offset of the recommended guest address from the network address.</summary>
    public const int GuestOffset = 100;

    /// <summary>Version of slirp4netns whose interface this program reproduces.</summary>
    public const string CompatibleVersion = "1.2.0";
}
