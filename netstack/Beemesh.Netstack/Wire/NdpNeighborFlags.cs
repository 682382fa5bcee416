namespace Beemesh.Netstack.Wire;

/// <summary>Flags of a neighbor advertisement (RFC 4861 §4.4), as they sit in the first byte after the checksum.</summary>
[Flags]
public enum NdpNeighborFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>O: override an existing cache entry.</summary>
    Override = 0x20,

    /// <summary>S: sent in response to a solicitation.</summary>
    Solicited = 0x40,

    /// <summary>R: the sender is a router.</summary>
    Router = 0x80,
}
