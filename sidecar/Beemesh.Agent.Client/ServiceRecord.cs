using System.Globalization;
using System.Net;

namespace Beemesh.Agent.Client;

/// <summary>
/// A service as the mesh balances it (the answer of <c>GET /v1/resolve</c>): every replica of
/// <c>NAME.NAMESPACE</c>, this node's and other nodes', in the order callers' sidecars list them
/// (<see cref="CompareReplicas"/>), and the mesh address the name resolves to.
/// </summary>
public sealed class ServiceRecord
{
    /// <summary>Service account name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Namespace.</summary>
    public string Namespace { get; set; } = string.Empty;

    /// <summary><c>spiffe://TD/ns/NAMESPACE/sa/NAME</c>, the identity every replica holds.</summary>
    public string SpiffeId { get; set; } = string.Empty;

    /// <summary>
    /// The address a sidecar's DNS answers for the name when it first sees it: the first replica's
    /// (every replica of a name on one node shares that node's address for it). Every address of the
    /// name leads to the whole service: a new connection to it goes to any replica.
    /// </summary>
    public string MeshAddress { get; set; } = string.Empty;

    /// <summary>The replicas new connections are spread over: this node's first (oldest registration first), then other nodes' by node name.</summary>
    public List<WorkloadRecord> Replicas { get; set; } = [];

    /// <summary>
    /// The service <paramref name="name"/> in <paramref name="ns"/> of <paramref name="workloads"/>
    /// (registrations and remote routes), or null when none of them is a reachable replica of it
    /// (a record without a mesh address or tunnel endpoint is not one).
    /// </summary>
    public static ServiceRecord? Of(IEnumerable<WorkloadRecord> workloads, string name, string ns)
    {
        ArgumentNullException.ThrowIfNull(workloads);
        List<WorkloadRecord> replicas = [.. workloads
            .Where(w => string.Equals(w.Name, name, StringComparison.OrdinalIgnoreCase) && string.Equals(w.Namespace, ns, StringComparison.OrdinalIgnoreCase)
                && IPAddress.TryParse(w.MeshAddress, out _) && IPEndPoint.TryParse(w.TunnelEndpoint, out _) && w.SpiffeId.Length > 0)
            .Order(Comparer<WorkloadRecord>.Create(CompareReplicas))];
        if (replicas.Count == 0)
        {
            return null;
        }

        WorkloadRecord first = replicas[0];
        return new ServiceRecord { Name = first.Name, Namespace = first.Namespace, SpiffeId = first.SpiffeId, MeshAddress = first.MeshAddress, Replicas = replicas };
    }

    /// <summary>
    /// The order of a service's replicas: this node's (<see cref="WorkloadRecord.Node"/> null) first,
    /// then other nodes' by node name; within a node by registration (<c>wN</c> ids in the order
    /// they were handed out), then by id.
    /// </summary>
    public static int CompareReplicas(WorkloadRecord? x, WorkloadRecord? y)
    {
        if (ReferenceEquals(x, y))
        {
            return 0;
        }

        if (x is null || y is null)
        {
            return x is null ? -1 : 1;
        }

        int c = string.CompareOrdinal(x.Node ?? string.Empty, y.Node ?? string.Empty);
        if (c == 0)
        {
            c = IdOrder(x.Id).CompareTo(IdOrder(y.Id));
        }

        return c != 0 ? c : string.CompareOrdinal(x.Id, y.Id);
    }

    private static long IdOrder(string id) =>
        id.Length > 1 && long.TryParse(id.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : long.MaxValue;
}
