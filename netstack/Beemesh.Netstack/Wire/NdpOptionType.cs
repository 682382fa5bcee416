namespace Beemesh.Netstack.Wire;

/// <summary>Neighbor discovery option types (RFC 4861 §4.6, RFC 8106). Append-only.</summary>
public enum NdpOptionType : byte
{
    /// <summary>Source link-layer address.</summary>
    SourceLinkLayerAddress = 1,

    /// <summary>Target link-layer address.</summary>
    TargetLinkLayerAddress = 2,

    /// <summary>Prefix information.</summary>
    PrefixInformation = 3,

    /// <summary>Redirected header.</summary>
    RedirectedHeader = 4,

    /// <summary>MTU.</summary>
    Mtu = 5,

    /// <summary>Recursive DNS server (RFC 8106 §5.1).</summary>
    RecursiveDnsServer = 25,

    /// <summary>DNS search list (RFC 8106 §5.2).</summary>
    DnsSearchList = 31,
}
