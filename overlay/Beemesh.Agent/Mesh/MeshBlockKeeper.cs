using System.Net;
using System.Text.Json;
using Beemesh.Agent.Client;
using Beemesh.Agent.State;
using Beemesh.Agent.Workloads;
using Beemesh.Overlay.Records;
using Microsoft.Extensions.Logging;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// Keeps this node's claim on a block of the mesh CIDR: the block is stored in
/// <c>STATE/state/mesh-block.json</c> (a restart keeps it) and advertised in the node record. At
/// every <see cref="CheckAsync"/> it compares the claim with the other nodes' live node records;
/// when a node with a lower id claims the same block, this node moves: it takes the first block no
/// other node claims (probing from its own start, <see cref="MeshBlockPlan.Choose"/>), stores it,
/// publishes its node record with it and only then re-addresses its workloads into it (their routes
/// follow at the next route pass). With no free block it claims none and refuses registrations until
/// one is free (a dead node's record expires with its lease).
/// </summary>
internal sealed class MeshBlockKeeper
{
    private readonly OverlayHost _overlay;
    private readonly WorkloadRegistry _registry;
    private readonly MeshBlockPlan _plan;
    private readonly string _path;
    private readonly string _nodeName;
    private readonly string _tunnel;
    private readonly string? _quic;
    private readonly ILogger _logger;

    private MeshBlockKeeper(OverlayHost overlay, WorkloadRegistry registry, MeshBlockPlan plan, string path, string nodeName, string tunnel, string? quic, ILogger logger)
    {
        _quic = quic;
        _overlay = overlay;
        _registry = registry;
        _plan = plan;
        _path = path;
        _nodeName = nodeName;
        _tunnel = tunnel;
        _logger = logger;
        Current = registry.AddressRange;
    }

    /// <summary>The block this node claims; null while it holds none.</summary>
    public IPNetwork? Current { get; private set; }

    /// <summary>
    /// The block stored in <paramref name="path"/> when it is one of <paramref name="plan"/>'s, else
    /// (first start, or another CIDR or block size since) the block <paramref name="nodeId"/>'s hash
    /// selects, stored. The claims of other nodes are not known yet: a collision is settled once their
    /// node records arrive. Throws <see cref="InvalidOperationException"/> naming the file when it is corrupt.
    /// </summary>
    public static IPNetwork LoadOrChoose(MeshBlockPlan plan, ulong nodeId, string path)
    {
        ArgumentNullException.ThrowIfNull(plan);
        StoredMeshBlock? stored = StateFile.Load(path, StateJsonContext.Default.StoredMeshBlock,
            s => s.Format != 1 ? $"format {s.Format} is not 1" : string.IsNullOrEmpty(s.Block) ? "block missing" : null);
        if (stored is not null && plan.TryIndexOf(stored.Block, out int index))
        {
            return plan.Block(index);
        }

        IPNetwork block = plan.Block(plan.StartIndex(nodeId));
        Store(path, block);
        return block;
    }

    /// <summary>
    /// Starts keeping the claim of the block <paramref name="registry"/> hands out addresses from.
    /// <paramref name="quic"/> is the node's QUIC tunnel endpoint when QUIC runs on it (advertised as
    /// capability <c>h3</c>), else null.
    /// </summary>
    public static MeshBlockKeeper Create(OverlayHost overlay, WorkloadRegistry registry, MeshBlockPlan plan, string path, string nodeName, string tunnel, ILogger logger, string? quic = null) =>
        new(overlay, registry, plan, path, nodeName, tunnel, quic, logger);

    /// <summary>The capabilities this node advertises: h2 always, h3 when QUIC runs.</summary>
    public static List<string> CapabilitiesFor(string? quic) =>
        quic is null ? [NodeRecordPayload.Http2Capability] : [NodeRecordPayload.Http2Capability, NodeRecordPayload.QuicCapability];

    /// <summary>Publishes this node's record: name, node port, tunnel port (and QUIC endpoint), capabilities and the claimed block.</summary>
    public Task<OverlayRecord> PublishNodeRecordAsync() =>
        _overlay.PublishAsync(new RecordContent(
            RecordKind.Node,
            MembersView.NodeKey(_nodeName),
            JsonSerializer.SerializeToUtf8Bytes(
                new NodeRecordPayload { Name = _nodeName, Overlay = _overlay.Self.EndPoint!.ToString(), Tunnel = _tunnel, MeshBlock = Current?.ToString(), Capabilities = CapabilitiesFor(_quic), Quic = _quic },
                AgentJsonContext.Default.NodeRecordPayload),
            Leased: true));

    /// <summary>Moves to another block when a lower node id claims this one (or claims one when none is held and one is free).</summary>
    public async Task CheckAsync()
    {
        ulong self = _overlay.Self.Id;
        List<LiveNodeRecord> nodes = await _overlay.QueryAsync(node => LiveNodeRecord.All(node, _overlay.Verifier, _overlay.Now())).ConfigureAwait(false);
        var others = new MeshBlockClaims(_plan, nodes.Where(n => n.NodeId != self).Select(n => (n.NodeId, n.NodeName, n.Payload.MeshBlock)));
        int? next = Decide(_plan, self, Current, others);
        IPNetwork? target = next is { } i ? _plan.Block(i) : null;
        if (Nullable.Equals(target, Current))
        {
            return;
        }

        IPNetwork? old = Current;
        if (target is { } block)
        {
            Store(_path, block);
        }

        Current = target;
        _overlay.CountExternal("mesh_block_moves");
        ulong? holder = old is { } o && _plan.TryIndexOf(o, out int oldIndex) ? others.HolderOf(oldIndex) : null;
        string why = holder is { } h
            ? $"{nodes.FirstOrDefault(n => n.NodeId == h)?.NodeName ?? h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture)}, a lower node id, claims {old}"
            : "a block is free again";
        OverlayHostLog.MeshBlockMoved(_logger, old?.ToString() ?? "none", target?.ToString() ?? "none (every block is claimed; registrations are refused)", why);
        await PublishNodeRecordAsync().ConfigureAwait(false);
        _registry.SetAddressRange(target);
    }

    /// <summary>
    /// The block index node <paramref name="self"/> should claim, given its current block and the
    /// other nodes' claims: the current one unless a lower id claims it too; else the first free one
    /// from its start (null when none is free).
    /// </summary>
    public static int? Decide(MeshBlockPlan plan, ulong self, IPNetwork? current, MeshBlockClaims others)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(others);
        if (current is { } block && plan.TryIndexOf(block, out int index) && (others.HolderOf(index) is not { } holder || holder > self))
        {
            return index;
        }

        return plan.Choose(self, others.Taken);
    }

    private static void Store(string path, IPNetwork block) =>
        StateFile.Save(path, new StoredMeshBlock { Block = block.ToString() }, StateJsonContext.Default.StoredMeshBlock);
}
