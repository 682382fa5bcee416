using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Beemesh.Agent.Client;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The mesh's services as one workload list names them: each <c>NAME.NAMESPACE</c> with its
/// replicas (every registration of the name, on this node and on others), the mesh addresses that
/// lead to the service, and the address its DNS name answers. Immutable; built from the list and the
/// table it replaces (sans-IO).
/// </summary>
/// <remarks>
/// A mesh address belongs to a name, not to one replica: the replicas of a name on one node share
/// their node's address for it, and each node of the mesh holds its own. Every address of a name is
/// a way into the whole service: a new connection to any of them goes to a replica chosen among all
/// of the name's replicas (<see cref="ReplicaBalancer"/>). The DNS answer for a name stays the same
/// while that address still leads to the name, and an address a guest may have cached from an
/// earlier answer keeps leading to its name after the replicas that held it are gone (the answer
/// itself moves to an address a route of the name holds), as long as the
/// name has replicas and no current route gives the address to another name; so a cached answer pins
/// no replica and never dead-ends while the service lives.
/// </remarks>
public sealed class MeshServiceTable
{
    private static readonly MeshPeer[] None = [];

    private readonly Dictionary<string, MeshPeer[]> _replicas = new(StringComparer.Ordinal);
    private readonly Dictionary<IPAddress, string> _services = new();
    private readonly Dictionary<string, IPAddress> _answers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MeshPeer> _byIdentity = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]> _ports = new(StringComparer.Ordinal);

    /// <summary>The table of an empty list.</summary>
    public static MeshServiceTable Empty { get; } = new([]);

    /// <summary>
    /// The services of <paramref name="workloads"/> (records without a valid mesh address, tunnel
    /// endpoint or SPIFFE ID are left out), keeping from <paramref name="previous"/> the DNS answers
    /// and the addresses of names that still have replicas.
    /// </summary>
    public MeshServiceTable(IEnumerable<WorkloadRecord> workloads, MeshServiceTable? previous = null)
    {
        ArgumentNullException.ThrowIfNull(workloads);
        var replicas = new Dictionary<string, List<(WorkloadRecord Record, MeshPeer Peer)>>(StringComparer.Ordinal);
        var ports = new Dictionary<string, SortedSet<int>>(StringComparer.Ordinal);
        foreach (WorkloadRecord w in workloads)
        {
            if (!IPAddress.TryParse(w.MeshAddress, out IPAddress? mesh) || !IPEndPoint.TryParse(w.TunnelEndpoint, out IPEndPoint? tunnel)
                || !SpiffeId.TryParse(w.SpiffeId, out SpiffeId? id))
            {
                continue;
            }

            // A QUIC endpoint only for a remote route (its node advertises h3), and only a valid one.
            IPEndPoint? quic = w.ServerName is not null && w.Node is not null && IPEndPoint.TryParse(w.Quic ?? string.Empty, out IPEndPoint? q) && q.Port != 0 ? q : null;
            var peer = new MeshPeer(id!, tunnel, mesh, w.ServerName, w.Node, quic);
            string key = Key(w.Name, w.Namespace);
            if (!replicas.TryGetValue(key, out var list))
            {
                replicas[key] = list = [];
                ports[key] = [];
            }

            list.Add((w, peer));
            _services[mesh] = key;
            foreach (WorkloadPort port in w.Ports ?? [])
            {
                ports[key].Add(port.Port);
            }
        }

        foreach ((string key, var list) in replicas)
        {
            // This node's replicas first, then other nodes' by name; by registration order within a
            // node: the agent's /v1/resolve lists them the same way.
            MeshPeer[] ordered = [.. list.OrderBy(r => r.Record, Comparer<WorkloadRecord>.Create(ServiceRecord.CompareReplicas)).Select(r => r.Peer)];
            _replicas[key] = ordered;
            _ports[key] = [.. ports[key]];
            foreach (MeshPeer peer in ordered)
            {
                _byIdentity.TryAdd(peer.SpiffeId.ToString(), peer);
            }
        }

        // The answer stays what it was while a route of the name still holds that address.
        foreach ((string key, MeshPeer[] ordered) in _replicas)
        {
            _answers[key] = previous is not null && previous._answers.TryGetValue(key, out IPAddress? answered)
                && _services.TryGetValue(answered, out string? still) && still == key
                ? answered
                : ordered[0].MeshAddress;
        }

        if (previous is not null)
        {
            // Addresses of names that still live keep leading to them unless a route now holds them.
            foreach ((IPAddress address, string key) in previous._services)
            {
                if (_replicas.ContainsKey(key))
                {
                    _services.TryAdd(address, key);
                }
            }
        }

    }

    /// <summary>The service names (<c>NAME.NAMESPACE</c>, lower case) of the table.</summary>
    public IEnumerable<string> Services => _replicas.Keys;

    /// <summary>The replicas of <paramref name="service"/> (<c>NAME.NAMESPACE</c>, any case): this node's first; empty when none.</summary>
    public IReadOnlyList<MeshPeer> Replicas(string service) =>
        _replicas.TryGetValue(service.ToLowerInvariant(), out MeshPeer[]? replicas) ? replicas : None;

    /// <summary>The service <paramref name="address"/> leads to, or null when it leads to none.</summary>
    public string? ServiceOf(IPAddress address) => _services.GetValueOrDefault(address);

    /// <summary>The address the DNS name of <paramref name="service"/> answers, or null when the service has no replica.</summary>
    public IPAddress? AddressOf(string service) => _answers.GetValueOrDefault(service.ToLowerInvariant());

    /// <summary>A replica holding identity <paramref name="id"/> (this node's first), or null.</summary>
    public MeshPeer? ByIdentity(string id) => _byIdentity.GetValueOrDefault(id);

    /// <summary>The ports the replicas of <paramref name="service"/> declare, in order; null when it has no replica.</summary>
    public int[]? Ports(string service) => _ports.GetValueOrDefault(service.ToLowerInvariant());

    /// <summary>The lookup key of a name: <c>NAME.NAMESPACE</c> in lower case.</summary>
    public static string Key(string name, string ns) => $"{name}.{ns}".ToLowerInvariant();
}

/// <summary>
/// Chooses the replica of a service for each new connection: round robin over the service's
/// replicas as the current table lists them, each service's turn starting at a random place so that
/// many callers started together do not all begin with the same replica. A replica that left the
/// table gets no new connection from the next choice on; connections already open keep theirs.
/// Thread-safe.
/// </summary>
public sealed class ReplicaBalancer
{
    private readonly ConcurrentDictionary<string, StrongBox<long>> _turns = new(StringComparer.Ordinal);
    private readonly Random _random;
    private readonly object _randomLock = new();

    /// <summary>A balancer whose starting places come from <paramref name="random"/> (a shared one when null).</summary>
    public ReplicaBalancer(Random? random = null) => _random = random ?? Random.Shared;

    /// <summary>The replica of <paramref name="service"/> for a new connection, or null when <paramref name="replicas"/> is empty.</summary>
    public MeshPeer? Pick(string service, IReadOnlyList<MeshPeer> replicas)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(replicas);
        if (replicas.Count == 0)
        {
            return null;
        }

        if (replicas.Count == 1)
        {
            return replicas[0];
        }

        StrongBox<long> turn = _turns.GetOrAdd(service, static (_, self) => new StrongBox<long>(self.Start()), this);
        long next = Interlocked.Increment(ref turn.Value);
        return replicas[(int)((ulong)next % (ulong)replicas.Count)];
    }

    /// <summary>Forgets the turns of services <paramref name="table"/> no longer has.</summary>
    public void Forget(MeshServiceTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        foreach (string service in _turns.Keys)
        {
            if (table.Replicas(service).Count == 0)
            {
                _turns.TryRemove(service, out _);
            }
        }
    }

    private long Start()
    {
        lock (_randomLock)
        {
            return _random.Next(0, 1 << 20);
        }
    }
}
