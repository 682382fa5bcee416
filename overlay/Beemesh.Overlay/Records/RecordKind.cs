namespace Beemesh.Overlay.Records;

/// <summary>What a record describes; the value is its byte on the wire. Append-only: a value once used is never reused or renumbered.</summary>
public enum RecordKind : byte
{
    /// <summary>A node: name, addresses, tunnel endpoint, mesh address block, capabilities.</summary>
    Node = 1,
    /// <summary>A workload route: SPIFFE ID, NAME.NAMESPACE, node, mesh address, ports. Valid only when signed by the node it names.</summary>
    Route = 2,
    /// <summary>A policy document.</summary>
    Policy = 3,
    /// <summary>A trust bundle.</summary>
    Bundle = 4,
    /// <summary>A node revocation.</summary>
    Revocation = 5,
}
