namespace Beemesh.Sidecar.Inbound;

/// <summary>One audit event of the tunnel server: a refused flow or request, or a revoked live connection or request.</summary>
/// <param name="Time">When it happened.</param>
/// <param name="Action"><c>denied</c> (refused at CONNECT) or <c>revoked</c> (live connection cut).</param>
/// <param name="Caller">The caller's SPIFFE ID.</param>
/// <param name="DestinationPort">The workload port the flow was for.</param>
/// <param name="Policy">The deciding policy (<c>namespace/name</c>), or null.</param>
/// <param name="Rule">The deciding rule index, or -1.</param>
/// <param name="Trigger">What caused the decision: <c>connect</c>, <c>policy-changed</c>, <c>bundle-changed</c>, <c>svid-expired</c>.</param>
/// <param name="Reason">Why, in one line.</param>
/// <param name="Duration">How long the connection had been live (zero when refused).</param>
/// <param name="BytesToWorkload">Bytes carried from the caller into the workload.</param>
/// <param name="BytesFromWorkload">Bytes carried from the workload back to the caller.</param>
/// <param name="Method">The HTTP method when a request on an HTTP port was decided; null for a TCP flow.</param>
/// <param name="Path">The HTTP path (without the query string) when a request was decided; null for a TCP flow.</param>
public sealed record AuditRecord(
    DateTimeOffset Time,
    string Action,
    string Caller,
    int DestinationPort,
    string? Policy,
    int Rule,
    string Trigger,
    string Reason,
    TimeSpan Duration,
    long BytesToWorkload,
    long BytesFromWorkload,
    string? Method = null,
    string? Path = null);
