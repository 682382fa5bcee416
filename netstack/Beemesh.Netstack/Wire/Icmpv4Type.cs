namespace Beemesh.Netstack.Wire;

/// <summary>ICMPv4 message types Beemesh handles (RFC 792). Append-only.</summary>
public enum Icmpv4Type : byte
{
    /// <summary>Echo reply.</summary>
    EchoReply = 0,

    /// <summary>Destination unreachable.</summary>
    DestinationUnreachable = 3,

    /// <summary>Echo request.</summary>
    EchoRequest = 8,

    /// <summary>Time exceeded.</summary>
    TimeExceeded = 11,
}
