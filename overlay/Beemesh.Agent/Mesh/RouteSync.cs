using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Agent.Workloads;
using Beemesh.Overlay;
using Beemesh.Overlay.Records;
using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// Keeps the overlay and the workload registry in step: each local registration is published as a
/// route record (key <c>NODE/ID</c>, a lease the overlay renews, so a dead node's routes expire on
/// every other node), a removed one is deleted (tombstone); the routes other nodes signed and still
/// lease become the registry's remote routes, marked with their node.
/// A pass runs as soon as something it depends on changes: a local registration (the registry's
/// <see cref="WorkloadRegistry.LocalChanged"/>) or a route, node or revocation record stored by the
/// overlay, so a new route is published, and applied on the other nodes, without waiting for a timer.
/// The passes coalesce and rest as long as they took (<see cref="PassLoop"/>); a pass also runs every
/// <see cref="SweepInterval"/> for what raises no event: leases that expire.
/// A remote route is used only when its mesh address lies in the block its node claims and holds
/// (<see cref="MeshBlockClaims"/>): a node cannot take another node's addresses; a refused route is
/// counted (<c>routes_outside_block_refused</c>) and logged once per version. Each pass first lets
/// the <see cref="MeshBlockKeeper"/> settle this node's own block.
/// The names of revoked nodes go to the registry too, for the sidecars' continuous authorization.
/// </summary>
internal sealed class RouteSync : IAsyncDisposable
{
    /// <summary>Period of the pass that catches what raises no event: expired leases (1 s).</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    private readonly OverlayHost _overlay;
    private readonly WorkloadRegistry _registry;
    private readonly string _nodeName;
    private readonly string _trustDomain;
    private readonly ILogger _logger;
    private readonly Dictionary<string, byte[]> _published = new(StringComparer.Ordinal);
    private readonly MeshBlockKeeper _blocks;
    private readonly MeshBlockPlan _plan;
    private HashSet<RecordId> _refused = [];
    private readonly Action<IReadOnlySet<System.Net.IPAddress>>? _revokedPeers;
    private readonly HashSet<System.Net.IPAddress> _revokedAddresses = [];
    private HashSet<System.Net.IPAddress> _refusedPeers = [];
    private readonly PassLoop _passes;

    /// <summary>
    /// Starts the loop (its first pass at once); <paramref name="revokedPeers"/> (the tunnel port's refusal) is given the
    /// addresses of revoked nodes, from their last node records, each time that set grows.
    /// </summary>
    public RouteSync(OverlayHost overlay, WorkloadRegistry registry, string nodeName, string trustDomain, MeshBlockKeeper blocks, MeshBlockPlan plan, ILogger logger,
        TimeProvider time, Action<IReadOnlySet<System.Net.IPAddress>>? revokedPeers = null)
    {
        _blocks = blocks;
        _plan = plan;
        _revokedPeers = revokedPeers;
        _overlay = overlay;
        _registry = registry;
        _nodeName = nodeName;
        _trustDomain = trustDomain;
        _logger = logger;
        _passes = new PassLoop(PassAsync, time, SweepInterval);
        _registry.LocalChanged += _passes.Request;
        _overlay.RecordStored += OnRecordStored;
    }

    // On the overlay's loop: records the next pass reads. This node's own routes come from its passes.
    private void OnRecordStored(OverlayRecord record)
    {
        if (record.Kind is RecordKind.Node or RecordKind.Revocation
            || (record.Kind == RecordKind.Route && record.Origin != _overlay.Self.Id))
        {
            _passes.Request();
        }
    }

    private async Task PassAsync()
    {
        try
        {
            // Revocations first: a sidecar cuts by issuer as soon as it sees the name, even
            // before the revoked node's routes leave its list.
            _registry.SetRevokedNodes(_overlay.RevokedNames.Values);
            await _blocks.CheckAsync().ConfigureAwait(false);
            await PublishLocalAsync().ConfigureAwait(false);
            _registry.SetRemoteRoutes(await _overlay.QueryAsync(RemoteRoutes).ConfigureAwait(false));
            if (_revokedPeers is not null && !_overlay.RevokedNames.IsEmpty
                && await _overlay.QueryAsync(RefusedPeers).ConfigureAwait(false) is { } refused
                && !refused.SetEquals(_refusedPeers))
            {
                _refusedPeers = refused;
                _revokedPeers(refused);
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or JsonException or IOException or UnauthorizedAccessException)
        {
            OverlayHostLog.LinkRefused(_logger, "routes", e.Message);
        }
    }

    private async Task PublishLocalAsync()
    {
        var current = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (WorkloadRecord local in _registry.List())
        {
            if (local.MeshAddress.Length == 0)
            {
                continue; // no block held: not reachable by address, no route
            }

            var route = new WorkloadRecord
            {
                Id = local.Id,
                Name = local.Name,
                Namespace = local.Namespace,
                SpiffeId = local.SpiffeId,
                MeshAddress = local.MeshAddress,
                TunnelEndpoint = local.TunnelEndpoint,
                Ports = local.Ports,
                Node = _nodeName,
            };
            current[$"{_nodeName}/{local.Id}"] = JsonSerializer.SerializeToUtf8Bytes(route, AgentJsonContext.Default.WorkloadRecord);
        }

        foreach ((string key, byte[] payload) in current)
        {
            if (!_published.TryGetValue(key, out byte[]? old) || !old.AsSpan().SequenceEqual(payload))
            {
                await _overlay.PublishAsync(new RecordContent(RecordKind.Route, key, payload, Leased: true)).ConfigureAwait(false);
                _published[key] = payload;
            }
        }

        foreach (string key in _published.Keys.Where(k => !current.ContainsKey(k)).ToList())
        {
            await _overlay.DeleteAsync(RecordKind.Route, key).ConfigureAwait(false);
            _published.Remove(key);
        }
    }

    // On the overlay's loop: live routes other nodes signed, each in the block its node holds. The
    // node name is the signer's, whatever the payload says.
    private List<WorkloadRecord> RemoteRoutes(OverlayNode node)
    {
        long now = _overlay.Now();
        var routes = new List<WorkloadRecord>();
        List<LiveNodeRecord> nodes = LiveNodeRecord.All(node, _overlay.Verifier, now);
        // This node's own claim is the block it holds now, even before its node record is in the
        // store: a route another node published into that block must not be taken meanwhile.
        var claims = new MeshBlockClaims(_plan, nodes.Where(n => n.NodeId != node.Self.Id)
            .Select(n => (n.NodeId, n.NodeName, n.Payload.MeshBlock))
            .Append((node.Self.Id, _nodeName, _blocks.Current?.ToString())));
        // Each node's tunnel port (and QUIC endpoint when it advertises h3), from the node record it signed itself.
        var tunnels = new Dictionary<string, string>(StringComparer.Ordinal);
        var quic = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (LiveNodeRecord live in nodes)
        {
            if (live.NodeId != node.Self.Id && System.Net.IPEndPoint.TryParse(live.Payload.Tunnel ?? "", out System.Net.IPEndPoint? endpoint) && endpoint.Port != 0)
            {
                tunnels[live.NodeName] = endpoint.ToString();
                if (live.Payload.QuicEndpoint() is { } quicEndpoint)
                {
                    quic[live.NodeName] = quicEndpoint.ToString();
                }
            }
        }

        var refused = new HashSet<RecordId>();
        foreach (OverlayRecord record in node.Store.Records)
        {
            if (record.Kind != RecordKind.Route || record.Tombstone || record.IsExpired(now) || record.Origin == node.Self.Id
                || _overlay.Verifier.Revoked.ContainsKey(record.Origin))
            {
                continue;
            }

            string? signer = _overlay.Verifier.SignerName(record);
            WorkloadRecord? route;
            try
            {
                route = JsonSerializer.Deserialize(record.Payload.Span, AgentJsonContext.Default.WorkloadRecord);
            }
            catch (JsonException)
            {
                continue;
            }

            if (signer is null || route is null || !record.Key.StartsWith(signer + "/", StringComparison.Ordinal))
            {
                continue;
            }

            // A route is reached through its node's tunnel port; without one (no node record yet) it is not reachable.
            if (!tunnels.TryGetValue(signer, out string? nodeTunnel))
            {
                continue;
            }

            if (claims.CheckRoute(record.Origin, route.MeshAddress) is { } why)
            {
                refused.Add(record.Id);
                if (!_refused.Contains(record.Id))
                {
                    _overlay.CountExternal("routes_outside_block_refused");
                    OverlayHostLog.RouteRefused(_logger, record.Key, signer, why);
                }

                continue;
            }

            route.Node = signer;
            route.Pid = 0;
            route.TunnelEndpoint = nodeTunnel;
            // The replica form: the origin node routes it to this workload, not to the newest of its name.
            route.ServerName = TunnelServerName.For(route.Name, route.Namespace, _trustDomain, route.Id);
            route.Quic = quic.GetValueOrDefault(signer);
            routes.Add(route);
        }

        // Only the versions still refused are remembered, so the set stays as small as the store.
        _refused = refused;
        return routes;
    }

    // On the overlay's loop: the tunnel port's refusal set from the store as it is now.
    private HashSet<System.Net.IPAddress> RefusedPeers(OverlayNode node) =>
        ChooseRefusedPeers(node.Store.Records, _overlay.RevokedNames, _overlay.Now(), _revokedAddresses);

    /// <summary>
    /// The addresses the tunnel port refuses: those in revoked nodes' node records (their overlay and
    /// tunnel endpoints, loopback and unspecified addresses left out), less those a live node that is
    /// not revoked names in its own unexpired record, so a node that put another's address in its
    /// record before its removal cannot get that other node refused. A revoked node's record counts
    /// only under its own node key. The addresses found in revoked nodes' records are added to
    /// <paramref name="revokedAddresses"/>, which the caller keeps so they stay refused after those
    /// records leave the store; a record whose payload does not parse adds nothing.
    /// </summary>
    internal static HashSet<System.Net.IPAddress> ChooseRefusedPeers(IEnumerable<OverlayRecord> records, IReadOnlyDictionary<ulong, string> revokedNames, long now,
        HashSet<System.Net.IPAddress> revokedAddresses)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(revokedNames);
        ArgumentNullException.ThrowIfNull(revokedAddresses);
        var live = new HashSet<System.Net.IPAddress>();
        foreach (OverlayRecord record in records)
        {
            if (record.Kind != RecordKind.Node || record.Tombstone)
            {
                continue;
            }

            if (!revokedNames.TryGetValue(record.Origin, out string? name))
            {
                if (!record.IsExpired(now))
                {
                    AddAddresses(record, live);
                }

                continue;
            }

            if (record.Key == MembersView.NodeKey(name))
            {
                AddAddresses(record, revokedAddresses);
            }
        }

        var refused = new HashSet<System.Net.IPAddress>(revokedAddresses);
        refused.ExceptWith(live);
        return refused;
    }

    private static void AddAddresses(OverlayRecord record, HashSet<System.Net.IPAddress> into)
    {
        NodeRecordPayload? payload;
        try
        {
            payload = JsonSerializer.Deserialize(record.Payload.Span, AgentJsonContext.Default.NodeRecordPayload);
        }
        catch (JsonException)
        {
            return;
        }

        foreach (string? endpoint in new[] { payload?.Overlay, payload?.Tunnel })
        {
            if (System.Net.IPEndPoint.TryParse(endpoint ?? string.Empty, out System.Net.IPEndPoint? parsed)
                && !System.Net.IPAddress.IsLoopback(parsed.Address) && !parsed.Address.Equals(System.Net.IPAddress.Any))
            {
                into.Add(parsed.Address.IsIPv4MappedToIPv6 ? parsed.Address.MapToIPv4() : parsed.Address);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _registry.LocalChanged -= _passes.Request;
        _overlay.RecordStored -= OnRecordStored;
        await _passes.DisposeAsync().ConfigureAwait(false);
    }
}
