using System.Net;
using Beemesh.Agent.Client;
using Beemesh.Spiffe;

namespace Beemesh.Sidecar.Mesh;

/// <summary>
/// The mesh directory of a workload's sidecar, kept from the agent's workload list: refreshed
/// every second in the background and on a miss, so lookups on the stack's loop thread never
/// wait for the agent longer than one list request.
/// </summary>
/// <remarks>
/// Every list request takes a sequence number when it starts, and a snapshot is installed only
/// if it was requested after the one in place, so a slow background refresh can never put back a
/// list older than one a miss already fetched. A miss in <see cref="ResolveIdentityAsync"/> (a
/// workload that registered a moment ago and calls at once) awaits a list requested after the
/// miss — one request serves every miss that was waiting — without holding a thread, so a burst of
/// new callers cannot starve the thread pool the request itself needs. <see cref="ResolveIdentity"/>
/// answers from the last list only. Misses for addresses and names come from the stack's loop
/// thread and from the guest, so those make their own request, at most every 200 ms.
/// </remarks>
public sealed class AgentMeshDirectory : IMeshDirectory, IDisposable
{
    private readonly AgentClient _agent;
    private readonly IPNetwork _meshNetwork;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _missRefresh = new(1, 1);
    private volatile Snapshot _snapshot = new([], 0);
    private long _requests;
    private long _lastMissRefresh;

    /// <summary>Starts a directory kept from <paramref name="agent"/>'s workload list; addresses outside <paramref name="meshNetwork"/> are never looked up.</summary>
    public AgentMeshDirectory(AgentClient agent, IPNetwork meshNetwork)
    {
        _agent = agent;
        _meshNetwork = meshNetwork;
        Refresh();
        _ = RefreshLoopAsync();
    }

    /// <inheritdoc />
    public MeshPeer? ResolveAddress(IPAddress address)
    {
        if (_snapshot.ByAddress.TryGetValue(address, out var peer))
        {
            return peer;
        }

        if (!_meshNetwork.Contains(address))
        {
            return null; // not a mesh address: never make the stack wait for the agent
        }

        RefreshOnMiss();
        return _snapshot.ByAddress.GetValueOrDefault(address);
    }

    /// <inheritdoc />
    public MeshPeer? ResolveIdentity(SpiffeId id) => _snapshot.ByIdentity.GetValueOrDefault(id.ToString());

    /// <inheritdoc />
    public async ValueTask<MeshPeer?> ResolveIdentityAsync(SpiffeId id, CancellationToken cancellationToken = default)
    {
        // A caller that registered a moment ago may not be in the last refresh yet; without its
        // mesh address the guest would see the connection come from nowhere.
        string key = id.ToString();
        if (_snapshot.ByIdentity.TryGetValue(key, out var peer))
        {
            return peer;
        }

        long seen = Interlocked.Read(ref _requests);
        await _missRefresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_snapshot.Request <= seen)
            {
                await RefreshAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _missRefresh.Release();
        }

        return _snapshot.ByIdentity.GetValueOrDefault(key);
    }

    /// <summary>Resolves NAME.NAMESPACE or NAME.NAMESPACE.svc.cluster.local (case-insensitive) to a mesh address.</summary>
    public IPAddress? ResolveName(string name)
    {
        string key = name.TrimEnd('.').ToLowerInvariant();
        const string Suffix = ".svc.cluster.local";
        if (key.EndsWith(Suffix, StringComparison.Ordinal))
        {
            key = key[..^Suffix.Length];
        }

        if (_snapshot.ByName.TryGetValue(key, out var address))
        {
            return address;
        }

        RefreshOnMiss();
        return _snapshot.ByName.GetValueOrDefault(key);
    }

    private void RefreshOnMiss()
    {
        // Not behind the identity misses' gate: the stack's loop thread must not queue behind
        // another request; it makes its own (snapshots never go backwards either way).
        long now = Environment.TickCount64;
        if (now - Interlocked.Read(ref _lastMissRefresh) > 200)
        {
            Interlocked.Exchange(ref _lastMissRefresh, now);
            Refresh();
        }
    }

    private void Refresh() => RefreshAsync().GetAwaiter().GetResult();

    private async Task RefreshAsync()
    {
        long request = Interlocked.Increment(ref _requests);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var list = await _agent.ListWorkloadsAsync(timeout.Token).ConfigureAwait(false);
            var fresh = new Snapshot(list, request);
            Snapshot current = _snapshot;
            while (current.Request < request)
            {
                Snapshot seen = Interlocked.CompareExchange(ref _snapshot, fresh, current);
                if (ReferenceEquals(seen, current))
                {
                    break;
                }

                current = seen;
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or AgentApiException)
        {
            // Keep the last good view: a restarting agent must not unresolve live peers.
        }
    }

    private async Task RefreshLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await RefreshAsync().ConfigureAwait(false);
        }
    }

    // The miss gate is not disposed: a flow arriving during shutdown may still wait on it, and a
    // SemaphoreSlim whose wait handle was never asked for holds nothing to release.
    /// <summary>Stops the background refresh.</summary>
    public void Dispose() => _stop.Cancel();

    private sealed class Snapshot
    {
        public Snapshot(List<WorkloadRecord> workloads, long request)
        {
            Request = request;
            foreach (var w in workloads)
            {
                if (!IPAddress.TryParse(w.MeshAddress, out var mesh) || !IPEndPoint.TryParse(w.TunnelEndpoint, out var tunnel)
                    || !SpiffeId.TryParse(w.SpiffeId, out var id))
                {
                    continue;
                }

                var peer = new MeshPeer(id!, tunnel, mesh);
                ByAddress[mesh] = peer;
                ByIdentity[w.SpiffeId] = peer;
                ByName[$"{w.Name}.{w.Namespace}".ToLowerInvariant()] = mesh;
            }
        }

        /// <summary>The sequence number of the list request this snapshot answers.</summary>
        public long Request { get; }

        public Dictionary<IPAddress, MeshPeer> ByAddress { get; } = new();

        public Dictionary<string, MeshPeer> ByIdentity { get; } = new();

        public Dictionary<string, IPAddress> ByName { get; } = new();
    }
}
