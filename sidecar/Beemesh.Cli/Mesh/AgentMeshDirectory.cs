using System.Net;
using Beemesh.Agent.Api;
using Beemesh.Sidecar.Mesh;
using Beemesh.Spiffe;

namespace Beemesh.Cli.Mesh;

/// <summary>
/// The mesh directory of a workload's sidecar, kept from the agent's workload list: refreshed
/// every second in the background and at once on a miss (at most every 200 ms), so lookups on
/// the stack's loop thread never wait for the agent.
/// </summary>
public sealed class AgentMeshDirectory : IMeshDirectory, IDisposable
{
    private readonly AgentClient _agent;
    private readonly IPNetwork _meshNetwork;
    private readonly CancellationTokenSource _stop = new();
    private volatile Snapshot _snapshot = new([]);
    private long _lastMissRefresh;

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
    public MeshPeer? ResolveIdentity(SpiffeId id)
    {
        // A caller that registered a moment ago may not be in the last refresh yet; without its
        // mesh address the guest would see the connection come from nowhere.
        string key = id.ToString();
        if (_snapshot.ByIdentity.TryGetValue(key, out var peer))
        {
            return peer;
        }

        RefreshOnMiss();
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
        long now = Environment.TickCount64;
        if (now - Interlocked.Read(ref _lastMissRefresh) > 200)
        {
            Interlocked.Exchange(ref _lastMissRefresh, now);
            Refresh();
        }
    }

    private void Refresh()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var list = _agent.ListWorkloadsAsync(timeout.Token).GetAwaiter().GetResult();
            _snapshot = new Snapshot(list);
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

            Refresh();
        }
    }

    public void Dispose() => _stop.Cancel();

    private sealed class Snapshot
    {
        public Snapshot(List<WorkloadRecord> workloads)
        {
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

        public Dictionary<IPAddress, MeshPeer> ByAddress { get; } = new();

        public Dictionary<string, MeshPeer> ByIdentity { get; } = new();

        public Dictionary<string, IPAddress> ByName { get; } = new();
    }
}
