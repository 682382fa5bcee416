namespace Beemesh.Netstack.Dns;

/// <summary>Outcome of <see cref="DnsHeader.CheckQuery"/> on a message the guest sent to the forwarder.</summary>
public enum DnsQueryCheck
{
    /// <summary>A whole header with QR = 0: forward it.</summary>
    Valid,

    /// <summary>Shorter than the 12-byte header: drop and count.</summary>
    TooShort,

    /// <summary>QR = 1, a response coming from the guest: drop and count (a guest cannot answer the forwarder).</summary>
    IsResponse,
}
