using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Beemesh.Agent.Mesh;

/// <summary>
/// The mesh address blocks the node records claim, with the rule that settles a collision: when
/// several nodes claim the same block, the one with the lowest node id holds it and the others
/// must move (sans-IO, deterministic: every node holding the same records reaches the same answer).
/// A claim that is not one of the plan's blocks (another CIDR or size, not aligned, not parsable)
/// claims nothing.
/// </summary>
public sealed class MeshBlockClaims
{
    private readonly MeshBlockPlan _plan;
    private readonly Dictionary<ulong, int> _byNode = [];
    private readonly Dictionary<int, ulong> _holders = [];
    private readonly Dictionary<ulong, string> _names = [];

    /// <summary>The claims of <paramref name="nodes"/> (node id, node name, claimed block text or null).</summary>
    public MeshBlockClaims(MeshBlockPlan plan, IEnumerable<(ulong NodeId, string NodeName, string? Block)> nodes)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(nodes);
        _plan = plan;
        foreach ((ulong id, string name, string? block) in nodes)
        {
            _names[id] = name;
            if (!plan.TryIndexOf(block, out int index))
            {
                continue;
            }

            _byNode[id] = index;
            if (!_holders.TryGetValue(index, out ulong holder) || id < holder)
            {
                _holders[index] = id;
            }
        }
    }

    /// <summary>Indices of every block some node claims (held or contested).</summary>
    public IReadOnlySet<int> Taken => _holders.Keys.ToHashSet();

    /// <summary>The node holding block <paramref name="index"/> (the lowest id claiming it), or null when none claims it.</summary>
    public ulong? HolderOf(int index) => _holders.TryGetValue(index, out ulong holder) ? holder : null;

    /// <summary>The block node <paramref name="nodeId"/> claims and holds (no lower id claims it too), or null.</summary>
    public IPNetwork? HeldBy(ulong nodeId) =>
        _byNode.TryGetValue(nodeId, out int index) && _holders[index] == nodeId ? _plan.Block(index) : null;

    /// <summary>
    /// Null when node <paramref name="origin"/> may route <paramref name="meshAddress"/> (it lies in
    /// the block that node claims and holds); else why not, in a few words.
    /// </summary>
    public string? CheckRoute(ulong origin, string? meshAddress)
    {
        if (!_byNode.TryGetValue(origin, out int index))
        {
            return "its node claims no mesh address block";
        }

        IPNetwork block = _plan.Block(index);
        ulong holder = _holders[index];
        if (holder != origin)
        {
            string name = _names.TryGetValue(holder, out string? n) ? n : holder.ToString("x16", CultureInfo.InvariantCulture);
            return $"its node's block {block} is held by {name} (lower node id)";
        }

        if (!IPAddress.TryParse(meshAddress, out IPAddress? address) || address.AddressFamily != AddressFamily.InterNetwork || !block.Contains(address))
        {
            return $"mesh address '{meshAddress}' is outside its node's block {block}";
        }

        return null;
    }
}
