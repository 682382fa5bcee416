using System.Net;
using System.Security.Cryptography.X509Certificates;
using Beemesh.Agent.Client;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The mesh directory of a workload's sidecar, kept from the agent's workload list by a long-poll
/// watch (<c>/v1/workloads/watch</c>) that answers as soon as a workload registers or departs, so
/// lookups answer from memory and the stack's loop thread never waits for the agent.
/// </summary>
/// <remarks>
/// Each answer carries the agent's epoch (random per agent start) and the list's version; a list is
/// installed only when it is newer than the one in place (a higher version, or another epoch: the
/// agent restarted), so a slow answer can never put back an older list. A miss in
/// <see cref="ResolveIdentityAsync"/> (a workload that registered a moment ago and calls at once)
/// awaits a list requested after the miss — one request serves every miss that was waiting —
/// without holding a thread; a caller still unknown then (a workload on another node whose route
/// has not reached this node yet) is held until a list names it, at most <see cref="IdentityWait"/>.
/// Misses for addresses and names come from the stack's loop thread and
/// the guest: they answer from the list in place and at most start a request in the background
/// (at most every 200 ms). While the agent cannot be reached the last list stays in place: live
/// peers keep resolving, and a caller not in it is refused. The list also names the nodes removed
/// from the mesh (<see cref="RevokedNodes"/>): <see cref="RevokedIssuerOf"/> tells the tunnel server
/// and the client pool which peers to refuse and cut.
/// </remarks>
public sealed class AgentMeshDirectory : IMeshDirectory, IDisposable
{
    private static readonly TimeSpan MissInterval = TimeSpan.FromMilliseconds(200);

    private readonly AgentClient _agent;
    private readonly IPNetwork _meshNetwork;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _missRefresh = new(1, 1);
    private readonly object _installing = new();
    private readonly ReplicaBalancer _balancer;
    private volatile Snapshot _snapshot = new(null, -1, [], []);
    private long _requests;
    private long _completedRequest;
    private long _lastMissRefresh = long.MinValue;
    private int _started;

    /// <summary>
    /// A directory kept from <paramref name="agent"/>'s workload list; addresses outside
    /// <paramref name="meshNetwork"/> are never looked up. Call <see cref="Start"/> (or
    /// <see cref="LoadAsync"/>) to begin watching.
    /// </summary>
    public AgentMeshDirectory(AgentClient agent, IPNetwork meshNetwork, TimeProvider? timeProvider = null)
        : this(agent, meshNetwork, timeProvider, null)
    {
    }

    /// <summary>As the other constructor, with the balancer's starting places drawn from <paramref name="random"/>.</summary>
    public AgentMeshDirectory(AgentClient agent, IPNetwork meshNetwork, TimeProvider? timeProvider, Random? random)
    {
        _balancer = new ReplicaBalancer(random);
        _agent = agent;
        _meshNetwork = meshNetwork;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Raised (on a pool thread) after a new list was installed.</summary>
    public event EventHandler? Changed;

    /// <summary>The version of the list in place (-1 before the first answer).</summary>
    public long Version => _snapshot.Version;

    /// <summary>The epoch of the agent that gave the list in place and its version, read together (null and -1 before the first answer).</summary>
    public (string? Epoch, long Version) Position
    {
        get
        {
            Snapshot current = _snapshot;
            return (current.Epoch, current.Version);
        }
    }

    /// <summary>Whether <paramref name="id"/> is the id of a workload in the list in place.</summary>
    public bool ContainsWorkload(string id) => _snapshot.Ids.Contains(id);

    /// <summary>Fetches the list once, then starts the watch.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        Start();
    }

    /// <summary>Starts the background watch (once).</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            _ = WatchLoopAsync();
        }
    }

    /// <summary>
    /// The workloads named <paramref name="name"/> in <paramref name="ns"/> that run on other nodes,
    /// from the list in place (the routes their nodes signed and keep leasing; a route that expires
    /// or is withdrawn leaves the list, and <see cref="Changed"/> is raised): each one's node, the
    /// node's tunnel endpoint and the server name it routes by. Never waits.
    /// </summary>
    public IReadOnlyList<MeshPeer> RemoteWorkloads(string name, string ns)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(ns);
        return [.. _snapshot.Services.Replicas(MeshServiceTable.Key(name, ns)).Where(static p => p.NodeName is not null && p.ServerName is not null)];
    }

    /// <inheritdoc />
    public MeshPeer? ResolveAddress(IPAddress address)
    {
        MeshServiceTable services = _snapshot.Services;
        if (services.ServiceOf(address) is { } service && services.Replicas(service) is { Count: > 0 } replicas)
        {
            return replicas[0];
        }

        if (_meshNetwork.Contains(address))
        {
            RefreshInBackground();
        }

        return null;
    }

    /// <inheritdoc />
    public MeshPeer? PickReplica(IPAddress address)
    {
        MeshServiceTable services = _snapshot.Services;
        if (services.ServiceOf(address) is { } service)
        {
            return _balancer.Pick(service, services.Replicas(service));
        }

        return ResolveAddress(address);
    }

    /// <summary>
    /// The replica of <paramref name="service"/> (<c>NAME.NAMESPACE</c>, or with
    /// <c>.svc.cluster.local</c>) for a new connection, as <see cref="PickReplica"/>; null when the
    /// list in place names no replica of it.
    /// </summary>
    public MeshPeer? PickServiceReplica(string service)
    {
        string key = ServiceKey(service);
        MeshServiceTable services = _snapshot.Services;
        MeshPeer? peer = _balancer.Pick(key, services.Replicas(key));
        if (peer is null)
        {
            RefreshInBackground();
        }

        return peer;
    }

    /// <summary>The services and their replicas as of the list in place.</summary>
    public MeshServiceTable Services => _snapshot.Services;

    /// <summary>Names of the nodes removed from the mesh, as of the list in place.</summary>
    public IReadOnlySet<string> RevokedNodes => _snapshot.RevokedNodes;

    /// <inheritdoc />
    public string? RevokedIssuerOf(X509Certificate2 peerCertificate) => NodeIssuer.RevokedNodeOf(peerCertificate, _snapshot.RevokedNodes);

    /// <inheritdoc />
    public MeshPeer? ResolveIdentity(SpiffeId id) => _snapshot.Services.ByIdentity(id.ToString());

    /// <inheritdoc />
    public async ValueTask<MeshPeer?> ResolveIdentityAsync(SpiffeId id, CancellationToken cancellationToken = default)
    {
        // A caller that registered a moment ago may not be in the list yet; without its mesh
        // address the guest would see the connection come from nowhere.
        string key = id.ToString();
        if (_snapshot.Services.ByIdentity(key) is { } peer)
        {
            return peer;
        }

        long seen = Interlocked.Read(ref _requests);
        await _missRefresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Interlocked.Read(ref _completedRequest) <= seen)
            {
                await RefreshQuietlyAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _missRefresh.Release();
        }

        return _snapshot.Services.ByIdentity(key) ?? await AwaitIdentityAsync(key, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// How long a caller with a valid SVID that this node does not know yet is held before it is
    /// refused: a workload on another node that calls right after it registered can arrive before
    /// its route has spread through the mesh (a few hundred ms). 2 s by default; zero refuses at once.
    /// </summary>
    public TimeSpan IdentityWait { get; set; } = TimeSpan.FromSeconds(2);

    // Waits, without a thread, for a list that names the caller (the watch installs each change)
    // until IdentityWait has passed; null then, so an unknown caller still fails closed.
    private async Task<MeshPeer?> AwaitIdentityAsync(string key, CancellationToken cancellationToken)
    {
        if (IdentityWait <= TimeSpan.Zero)
        {
            return null;
        }

        using var patience = new CancellationTokenSource(IdentityWait, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(patience.Token, cancellationToken);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        EventHandler onChange = (_, _) => Volatile.Read(ref changed).TrySetResult();
        Changed += onChange;
        try
        {
            while (true)
            {
                Volatile.Write(ref changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                if (_snapshot.Services.ByIdentity(key) is { } peer)
                {
                    return peer;
                }

                try
                {
                    await changed.Task.WaitAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return _snapshot.Services.ByIdentity(key);
                }
            }
        }
        finally
        {
            Changed -= onChange;
        }
    }

    /// <summary>
    /// Resolves NAME.NAMESPACE or NAME.NAMESPACE.svc.cluster.local (case-insensitive) to the service's
    /// mesh address (<see cref="MeshServiceTable.AddressOf"/>): one address for all its replicas.
    /// </summary>
    public IPAddress? ResolveName(string name)
    {
        if (_snapshot.Services.AddressOf(ServiceKey(name)) is { } address)
        {
            return address;
        }

        RefreshInBackground();
        return null;
    }

    /// <summary>
    /// The ports declared by the workloads named <paramref name="service"/> (<c>NAME.NAMESPACE</c>,
    /// case-insensitive), in order; null when no workload of the list in place has that name.
    /// </summary>
    public IReadOnlyList<int>? ServicePorts(string service)
    {
        if (_snapshot.Services.Ports(service) is { } ports)
        {
            return ports;
        }

        RefreshInBackground();
        return null;
    }

    private static string ServiceKey(string name)
    {
        string key = name.TrimEnd('.').ToLowerInvariant();
        const string Suffix = ".svc.cluster.local";
        return key.EndsWith(Suffix, StringComparison.Ordinal) ? key[..^Suffix.Length] : key;
    }

    /// <summary>Starts a list request off the caller's thread, at most every 200 ms; never waits.</summary>
    private void RefreshInBackground()
    {
        long now = _time.GetTimestamp();
        long last = Interlocked.Read(ref _lastMissRefresh);
        if (last != long.MinValue && _time.GetElapsedTime(last, now) < MissInterval)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _lastMissRefresh, now, last) == last)
        {
            _ = Task.Run(RefreshQuietlyAsync);
        }
    }

    private async Task RefreshQuietlyAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), _time);
            await RefreshAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or AgentApiException or System.Text.Json.JsonException)
        {
            // Keep the last good view: a restarting agent must not unresolve live peers.
        }
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        long request = Interlocked.Increment(ref _requests);
        WorkloadSet set = await _agent.WatchWorkloadsAsync(null, -1, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        Install(set);
        MarkCompleted(request);
    }

    private void MarkCompleted(long request)
    {
        long current = Interlocked.Read(ref _completedRequest);
        while (current < request)
        {
            long seen = Interlocked.CompareExchange(ref _completedRequest, request, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private void Install(WorkloadSet set)
    {
        lock (_installing)
        {
            Snapshot current = _snapshot;
            bool newer = set.Epoch != current.Epoch || set.Version > current.Version;
            if (!newer)
            {
                return;
            }

            _snapshot = new Snapshot(set.Epoch, set.Version, set.Workloads, set.RevokedNodes, current.Services);
            _balancer.Forget(_snapshot.Services);
        }

        Changed?.Invoke(this, EventArgs.Empty);
    }

    private async Task WatchLoopAsync()
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                Snapshot current = _snapshot;
                long request = Interlocked.Increment(ref _requests);
                WorkloadSet set = await _agent.WatchWorkloadsAsync(current.Epoch, current.Version, TimeSpan.FromSeconds(25), _stop.Token).ConfigureAwait(false);
                Install(set);
                MarkCompleted(request);
                delay = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or AgentApiException or System.Text.Json.JsonException)
            {
                // The agent is away: keep the last list and try again, backing off to 2 s.
                try
                {
                    await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    // The miss gate is not disposed: a flow arriving during shutdown may still wait on it, and a
    // SemaphoreSlim whose wait handle was never asked for holds nothing to release.
    /// <summary>Stops the watch.</summary>
    public void Dispose() => _stop.Cancel();

    private sealed class Snapshot
    {
        public Snapshot(string? epoch, long version, List<WorkloadRecord> workloads, List<string> revokedNodes, MeshServiceTable? previous = null)
        {
            Epoch = epoch;
            Version = version;
            RevokedNodes = new HashSet<string>(revokedNodes ?? [], StringComparer.Ordinal);
            foreach (var w in workloads)
            {
                Ids.Add(w.Id);
            }

            Services = new MeshServiceTable(workloads, previous);
        }

        /// <summary>The agent epoch of the list (null before the first answer).</summary>
        public string? Epoch { get; }

        /// <summary>The agent's list version.</summary>
        public long Version { get; }

        public HashSet<string> Ids { get; } = new(StringComparer.Ordinal);

        public HashSet<string> RevokedNodes { get; }

        public MeshServiceTable Services { get; }
    }
}
